"""End-to-end: ansible-playbook runs async tasks through this project's modules.

The assertions on task results live in the playbooks (playbooks/*.yml); here we check that each
run succeeded and, where it matters, what is left on disk or in the process table.
See conftest.py for the fixtures, tasks_support.py for the runner and the environment knobs.
"""

from __future__ import annotations

import json
import re

import pytest
from tasks_support import CONTROLLERS, NATIVE, NATIVE_LIBRARY, REPO, UNSET
from harness.procs import processes_matching
from harness.stubs import is_stub
from harness.wait import wait_until

BINARY_SLEEP = REPO / "target" / "e2e-modules" / "binary_sleep"
JOB_ID = re.compile(r"^j[0-9]+[.][0-9]+$")


def job_files(directory):
    """Job files in an async dir: named by their job id (other entries are the wrapper's own)."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if JOB_ID.match(p.name))


def ansible_tmp_dirs(play):
    return sorted(p.name for p in play.remote_tmp.iterdir() if p.name.startswith("ansible-tmp-"))


def test_poll_success(play):
    play.run("poll_success.yml")
    assert job_files(play.async_dir) == []
    # The wrapper removes the module's tmp dir itself once the job is over (the stock one only
    # at its next 5-second watchdog tick, hence the wait).
    wait_until(lambda: ansible_tmp_dirs(play) == [], timeout=20, what="the jobs' tmp dirs to be removed")


def test_poll0_status_cleanup_and_unknown_job(play):
    play.run("poll0_status.yml")
    assert job_files(play.async_dir) == []
    wait_until(lambda: ansible_tmp_dirs(play) == [], timeout=20, what="the job's tmp dir to be removed")


@pytest.mark.skipif(not NATIVE, reason="E2E_LIBRARY is set: not testing the native modules")
def test_native_modules_are_the_ones_used(play):
    launcher = NATIVE_LIBRARY / "async_wrapper"
    status = NATIVE_LIBRARY / "async_status"
    assert launcher.read_bytes().startswith(b"#!/bin/sh\n"), "library/async_wrapper is not the sh launcher"
    head = status.read_bytes()[:64]
    assert head.startswith((b"\x7fELF", b"#!/bin/sh\n")), "library/async_status is not this project's"
    assert b"python" not in head.split(b"\n")[0], "library/async_status needs Python"
    # The stock modules in the controller venvs are stubs that fail: a job that starts and
    # comes back through async_status proves the native modules did both.
    play.run("leave_job_file.yml")
    stub = play.controller.venv.glob("lib/python3*/site-packages/ansible/modules/async_wrapper.py")
    assert any(is_stub(p) for p in stub), \
        "the controller venv still has the stock async_wrapper: run `make venvs`"


def test_module_fails_gracefully(play):
    play.run("module_fails.yml")


def test_module_raises(play):
    play.run("module_raises.yml")


def test_junk_around_the_json(play):
    result = play.run("junk_output.yml")
    assert "Module invocation had junk after the JSON data" in result.stdout + result.stderr


def test_module_writes_stderr(play):
    play.run("module_stderr.yml")


def test_module_reading_stdin_does_not_hang(play):
    play.run("module_stdin.yml")


def test_custom_async_dir(play):
    play.run("custom_async_dir.yml", async_dir=UNSET)
    custom = play.tmp / "custom async dir"
    assert custom.is_dir()
    assert job_files(custom) == []


def test_default_async_dir(play):
    play.run("default_async_dir.yml", async_dir=UNSET)
    # The wrapper kept its program there (the dir stood in for ~/.ansible_async), and the
    # playbook's jobs were cleaned up.
    assert any((play.default_async_dir / ".bin").iterdir())
    assert job_files(play.default_async_dir) == []


def test_check_mode(play):
    play.run("check_mode.yml", check=True)
    assert (play.tmp / "real").exists()
    for name in ("polled", "forgotten", "skipped"):
        assert not (play.tmp / name).exists(), f"check mode created {name}"


def test_time_limit(play):
    polled = f"30.{play.nonce}"
    forgotten = f"31.{play.nonce}"
    play.run("time_limit.yml", extra_vars={"e2e_sleep_polled": polled, "e2e_sleep_forgotten": forgotten})
    # By the time the job file says "Timeout exceeded", the job's process group is gone.
    assert processes_matching(f"sleep {forgotten}") == []
    # The polled job too (allowing for the poll loop having given up before the kill).
    wait_until(lambda: processes_matching(f"sleep {polled}") == [], timeout=15, what=f"'sleep {polled}' to be killed")


@pytest.mark.parametrize("controller", sorted({*CONTROLLERS, "2.21", "2.22"}), indirect=True,
                         ids=lambda v: f"core-{v}")
def test_shell_script_module_over_its_time_limit(play):
    """A non-Python module's `_ansible_version` is in its arguments file: the job ends when
    this version's own wrapper would end it (a limit of 1 s: 2 s, the halving watchdog of
    2.19.12 on), not at the older watchdog's 10 s."""
    sleep = f"40.{play.nonce}"
    play.run("sh_module_time_limit.yml", extra_vars={"e2e_sleep": sleep})
    assert processes_matching(f"sleep {sleep}") == []
    if NATIVE:
        logs = [p.read_text() for p in play.async_dir.glob("*.log")]
        assert len(logs) == 1, logs
        command = tuple(int(n) for n in play.controller.version.split(".")[:2]) >= (2, 21)
        invoked = f" invoked protocol={'command' if command else 'legacy'} time_limit=1 grace=2 deadline=2 "
        assert invoked + "limit_rule=stock-halving " in logs[0], logs[0]


def test_binary_module_on_a_host_without_python(play):
    assert BINARY_SLEEP.exists(), "target/e2e-modules/binary_sleep is missing: run `make build`"
    # The stock async_wrapper is Python: without the native modules the host needs one.
    interpreter = "/nonexistent/python3" if NATIVE else str(play.controller.python)
    play.run("binary_module.yml", extra_hosts={"nopython": {"ansible_python_interpreter": interpreter}})
    assert job_files(play.async_dir) == []


def test_parallel_jobs(play):
    result = play.run("parallel_jobs.yml")
    assert result.recap["localhost"]["failed"] == 0
    assert job_files(play.async_dir) == []


def test_results_are_json(play):
    """The job file of a finished job is one JSON object: the module's result."""
    play.run("leave_job_file.yml")
    files = job_files(play.async_dir)
    assert len(files) == 1, files
    content = json.loads((play.async_dir / files[0]).read_text())
    assert content["rc"] == 0 and content["stdout"] == "kept", content
    assert "started" not in content  # a finished job's file has no "started" key
