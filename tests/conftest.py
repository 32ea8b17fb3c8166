"""Shared by every pytest suite here: the two controllers and a way to run a playbook on
localhost with this project's library/."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "library"
CONTROLLERS = {
    "2.19": REPO / ".venv" / "core-2.19" / "bin",
    "2.21": REPO / ".venv" / "core-2.21" / "bin",
}


class PlaybookRun:
    """Runs playbooks with one controller against localhost, in a private sandbox."""

    def __init__(self, controller: str, tmp_path: Path):
        self.controller = controller
        self.bin = CONTROLLERS[controller]
        self.tmp = tmp_path
        self.async_dir = tmp_path / "async"

    def __call__(self, playbook: Path, *args: str, host_vars: str = "", timeout: int = 300, check=True):
        inventory = self.tmp / "inventory"
        inventory.write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={self.bin / 'python'}"
            f" ansible_async_dir={self.async_dir} {host_vars}\n"
        )
        env = dict(
            os.environ,
            ANSIBLE_LIBRARY=str(LIBRARY),
            ANSIBLE_LOCAL_TEMP=str(self.tmp / "local"),
            ANSIBLE_REMOTE_TEMP=str(self.tmp / "remote"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
        )
        run = subprocess.run(
            [str(self.bin / "ansible-playbook"), "-i", str(inventory), str(playbook), *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )
        sys.stdout.write(run.stdout[-20000:])
        sys.stderr.write(run.stderr[-5000:])
        if check:
            assert run.returncode == 0, f"ansible-playbook exited {run.returncode}"
            assert "failed=0" in run.stdout
        return run


@pytest.fixture(params=sorted(CONTROLLERS))
def playbook(request, tmp_path):
    """Runs a playbook with each controller in turn (ansible-core 2.19 and 2.21)."""
    return PlaybookRun(request.param, tmp_path)
