"""Fixtures for the job-control tests."""

import json
import os

import pytest

from jobhost import Host, alive


@pytest.fixture
def host(tmp_path):
    host = Host(tmp_path)
    yield host
    # Stop whatever a failed test left running.
    if host.async_dir.exists():
        for path in host.async_dir.iterdir():
            if path.name.startswith(".") or path.suffix == ".log" or not path.is_file():
                continue
            try:
                job = json.loads(path.read_text() or "{}")
            except ValueError:
                continue
            for key in ("module_process", "supervisor"):
                pid = (job.get(key) or {}).get("pid")
                if pid and alive(pid):
                    try:
                        os.killpg(pid, 9) if key == "module_process" else os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
