"""async_job mode=wait through real ansible-playbook (ansible-core 2.19 and 2.21), with the
async_job action plugin, pipelining on and off: the jobs start with poll: 0, one wait collects
them (tests/jobctl/playbooks/wait.yml asserts the results)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.controllers import PROTOCOLS, controller
from harness.env import ansible_env
from harness.jobs import kill_jobs
from harness.paths import LIBRARY, REPO
from harness.recap import assert_recap_ok, parse_recap

PLAYBOOKS = Path(__file__).parent / "playbooks"
ACTION_PLUGINS = REPO / "action_plugins"


@pytest.mark.parametrize("pipelining", [False, True], ids=["pipelining-off", "pipelining-on"])
@pytest.mark.parametrize("version", PROTOCOLS)
def test_wait_collects_a_fan_out_in_one_call(tmp_path, version, pipelining):
    found = controller(version)
    async_dir = tmp_path / "async"
    inventory = tmp_path / "inventory"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={found.python}"
                         f" ansible_async_dir={async_dir}\n")
    env = ansible_env(ANSIBLE_LIBRARY=str(LIBRARY), ANSIBLE_ACTION_PLUGINS=str(ACTION_PLUGINS),
                      ANSIBLE_PIPELINING=str(pipelining), ANSIBLE_LOCAL_TEMP=str(tmp_path / "local"),
                      ANSIBLE_REMOTE_TEMP=str(tmp_path / "remote"))
    try:
        run = subprocess.run([str(found.ansible_playbook), "-vvv", "-i", str(inventory), str(PLAYBOOKS / "wait.yml")],
                             env=env, capture_output=True, text=True, timeout=300)
    finally:
        kill_jobs(async_dir)
    sys.stdout.write(run.stdout[-20000:])
    sys.stderr.write(run.stderr[-5000:])
    assert run.returncode == 0, f"ansible-playbook exited {run.returncode}"
    assert_recap_ok(parse_recap(run.stdout), allow_ignored=True)
    # Our programs ran: the job logs only our wrapper writes, and async_job (ours alone) with
    # pipelining as asked: its module text uploaded as a file only when pipelining is off.
    assert any(async_dir.glob("*.log")), "no job log: our async_wrapper did not run"
    uploads = re.findall(r"PUT .* TO (\S*AnsiballZ_async_job)", run.stdout)
    assert bool(uploads) != pipelining, uploads
