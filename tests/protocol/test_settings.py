"""Every wrapper (the native program in library/async_wrapper and the portable fallback) takes
or refuses the settings of a task's environment as settings.json says: the same failed reply
for a bad value, the same record of a good one in the running job file. The native program's
Rust tests read the same table (crates/async-wrapper/tests/wrapper/cli.rs). Needs `make build`."""

import json
import os
import signal
import subprocess
import time
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


@pytest.mark.parametrize("wrapper", ["native", "fallback"])
def test_retention_removes_old_finished_jobs_and_nothing_else(libraries, tmp_path, wrapper):
    """ASYNC_WRAPPER_RETAIN: the launch removes finished jobs (and logs) older than that, keeps
    younger ones, running ones of any age and names that are not jobs; its log says how many."""
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    old = time.time() - 3 * 86400

    def job(name, content, mtime):
        path = async_dir / name
        path.write_text(content)
        (async_dir / f"{name}.log").write_text("x\n")
        os.utime(path, (mtime, mtime))
        return path

    finished_old = job("j1.1", '{"rc": 0}', old)
    running_old = job("j2.2", '{"started": true, "finished": false}', old)
    finished_young = job("j3.3", '{"rc": 0}', time.time())
    hidden_old = job(".keep", '{"rc": 0}', old)
    module = tmp_path / "module"
    module.write_text("#!/bin/sh\necho '{\"rc\": 0}'\n")
    module.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ANSIBLE_ASYNC_DIR": str(async_dir),
           "ASYNC_WRAPPER_RETAIN": "2d"}
    run = subprocess.run(["/bin/sh", str(libraries[wrapper] / "async_wrapper"), "j9", "60", str(module), "_"],
                         env=env, capture_output=True, text=True, timeout=60)
    jid = json.loads(run.stdout)["ansible_job_id"]
    try:
        wait_finished(async_dir, jid, timeout=30)
        assert not finished_old.exists() and not (async_dir / "j1.1.log").exists()
        assert running_old.exists() and finished_young.exists() and hidden_old.exists()
        log = (async_dir / f"{jid}.log").read_text()
        assert " retain older_than=172800 removed=1\n" in log, log
    finally:
        kill_jobs(async_dir)
