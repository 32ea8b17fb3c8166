"""Fixtures for the job-control tests."""

import pytest

from harness.jobs import kill_jobs
from jobhost import Host


@pytest.fixture
def host(tmp_path):
    host = Host(tmp_path)
    yield host
    # Stop whatever a failed test left running.
    kill_jobs(host.async_dir)
