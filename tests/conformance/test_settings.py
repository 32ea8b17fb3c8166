"""Every wrapper (the native program in library/async_wrapper and the portable fallback) takes
or refuses the settings of a task's environment as settings.json says: the same failed reply
for a bad value, the same record of a good one in the running job file. The native program's
Rust tests read the same table (crates/async-wrapper/tests/wrapper/cli.rs). Needs `make build`."""

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from harness.jobs import kill_jobs, wait_finished, wait_running

TABLE = json.loads((Path(__file__).resolve().parent / "settings.json").read_text())["cases"]


@pytest.mark.parametrize("wrapper", ["native", "fallback"])
@pytest.mark.parametrize("case", TABLE, ids=lambda case: json.dumps(case["env"]))
def test_a_setting_is_taken_or_refused_as_the_table_says(libraries, tmp_path, wrapper, case):
    module = tmp_path / "module"
    module.write_text("#!/bin/sh\nexec sleep 60\n")
    module.chmod(0o755)
    async_dir = tmp_path / "async"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ANSIBLE_ASYNC_DIR": str(async_dir), **case["env"]}
    run = subprocess.run(["/bin/sh", str(libraries[wrapper] / "async_wrapper"), "j1", "600", str(module), "_"],
                         env=env, capture_output=True, text=True, timeout=60)
    reply = json.loads(run.stdout)
    if "msg" in case:
        assert (run.returncode, reply) == (1, {"failed": True, "msg": case["msg"]})
        assert not async_dir.exists() or not [p for p in async_dir.iterdir() if not p.name.startswith(".")]
        return
    assert run.returncode == 0, run.stdout + run.stderr
    jid = reply["ansible_job_id"]
    try:
        marker = wait_running(async_dir, jid, timeout=30)
        assert {key: marker.get(key) for key in case["marker"]} == case["marker"], marker
        os.kill(marker["supervisor"]["pid"], signal.SIGUSR1)
        wait_finished(async_dir, jid, timeout=30)
    finally:
        kill_jobs(async_dir)
