"""Every wrapper (the native program in library/async_wrapper and the portable fallback) is held
to the same table of time-limit cases, deadlines.json: the deadline its running job file records
for each command line, version and ASYNC_WRAPPER_EXACT_LIMIT setting, or the failed reply that
refuses the setting. The native program's Rust tests read the same table
(crates/async-wrapper/tests/wrapper/termination.rs). Needs `make build`; about 10 s."""

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from harness.jobs import kill_jobs, wait_finished, wait_running

TABLE = json.loads((Path(__file__).resolve().parent / "deadlines.json").read_text())["cases"]


def case_id(case):
    return "-".join(f"{k}={v}" for k, v in case.items() if k != "deadline")


@pytest.mark.parametrize("wrapper", ["native", "fallback"])
@pytest.mark.parametrize("case", TABLE, ids=case_id)
def test_the_deadline_is_the_tables(libraries, tmp_path, wrapper, case):
    tmp_dir = tmp_path / "ansible-tmp-1-2-3"
    tmp_dir.mkdir()
    version = case["version"] and f'"_ansible_version": "{case["version"]}"'
    in_args = case.get("version_in") in ("args", "args-words")
    module = tmp_dir / "module"
    head = f"# ANSIBALLZ_PARAMS = '{{{version}}}'\n" if version and not in_args else ""
    module.write_text(f"#!/bin/sh\n{head}exec sleep 60\n")
    module.chmod(0o755)
    args_file = tmp_dir / "args"
    if case.get("version_in") == "args-words":  # as ansible writes an old-style module's
        args_file.write_text(f"_ansible_check_mode=False _ansible_version={case['version']} ")
    else:
        args_file.write_text("{%s}" % (version if version and in_args else ""))
    if case["protocol"] == "legacy":
        args = [str(module), str(args_file) if in_args else "_", "-preserve_tmp"]
    else:
        args = ["true", str(module), "/bin/sh", str(module), *([str(args_file)] if in_args else [])]
    async_dir = tmp_path / "async"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ANSIBLE_ASYNC_DIR": str(async_dir)}
    if case.get("exact") is not None:
        env["ASYNC_WRAPPER_EXACT_LIMIT"] = case["exact"]
    run = subprocess.run(["/bin/sh", str(libraries[wrapper] / "async_wrapper"), "j1", str(case["limit"]), *args],
                         env=env, capture_output=True, text=True, timeout=60)
    reply = json.loads(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    jid = reply["ansible_job_id"]
    try:
        marker = wait_running(async_dir, jid, timeout=30)
        assert marker.get("deadline") == case["deadline"], marker
        os.kill(marker["supervisor"]["pid"], signal.SIGUSR1)
        wait_finished(async_dir, jid, timeout=30)
    finally:
        kill_jobs(async_dir)
