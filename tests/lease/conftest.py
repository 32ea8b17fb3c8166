"""Fixtures for tests/lease: a private sshd on loopback for the module's tests (from the shared
tests/harness), the runs a test makes (each stopped when the test ends, pass or fail: its
ansible-playbook, its ssh masters, its jobs' processes), and the figures file."""

from __future__ import annotations

import pytest

from harness.sshd import running_sshd
from lease_harness import Figures


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def figures():
    return Figures()


@pytest.fixture
def runs():
    """A list a test appends its Runs to; each is stopped at the end."""
    made = []
    try:
        yield made
    finally:
        for run in made:
            run.stop()
