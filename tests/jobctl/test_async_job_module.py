"""async_job as an ansible module, through real ansible-playbook on both controllers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONTROLLERS, LIBRARY

PLAYBOOKS = Path(__file__).parent / "playbooks"


@pytest.mark.parametrize("controller", sorted(CONTROLLERS))
def test_job_control_playbook(controller, tmp_path):
    bin_dir = CONTROLLERS[controller]
    async_dir = tmp_path / "async"
    inventory = tmp_path / "inventory"
    inventory.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={bin_dir / 'python'}"
        f" ansible_async_dir={async_dir}\n"
    )
    env = dict(
        os.environ,
        ANSIBLE_LIBRARY=str(LIBRARY),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    run = subprocess.run(
        [str(bin_dir / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / "job_control.yml")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    sys.stdout.write(run.stdout[-20000:])
    sys.stderr.write(run.stderr[-5000:])
    assert run.returncode == 0
    assert "failed=0" in run.stdout
