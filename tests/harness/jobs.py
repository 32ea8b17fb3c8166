"""Job files in an async dir as the tests read them, and waiting for a job to reach a state.

A job file holds {"started": true, ...} while the job runs (the module's process recorded
once it runs: "module_process"), then the module's result (or the wrapper's failure), which has
no "started" key. kill_jobs ends what a test's jobs left running."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from . import procs
from .wait import wait_until


def read_job(async_dir: Path, jid: str) -> dict:
    """The job file's JSON ({"started": true} while it is still empty)."""
    text = (async_dir / jid).read_text()
    return json.loads(text) if text.strip() else {"started": True}


def wait_running(async_dir: Path, jid: str, *, timeout: float = 20) -> dict:
    """The job file once the module runs (it then records the module's process)."""
    wait_until(lambda: "module_process" in read_job(async_dir, jid), timeout=timeout,
               what=f"job {jid} to run its module")
    return read_job(async_dir, jid)


def wait_finished(async_dir: Path, jid: str, *, timeout: float = 20) -> dict:
    """The job's result, once it has one."""
    wait_until(lambda: "started" not in read_job(async_dir, jid), timeout=timeout, what=f"job {jid} to finish")
    return read_job(async_dir, jid)


def kill_jobs(async_dir: Path) -> None:
    """Ends what the jobs in `async_dir` still run, by the pids their job files record: each
    module's process group and each supervisor. For a fixture's teardown after a failed test."""
    if not async_dir.is_dir():
        return
    for path in async_dir.iterdir():
        if path.name.startswith(".") or path.suffix == ".log" or not path.is_file():
            continue
        try:
            job = json.loads(path.read_text() or "{}")
        except ValueError:
            continue
        if not isinstance(job, dict):
            continue
        module = (job.get("module_process") or {}).get("pid")
        if module and procs.is_alive(module):
            try:
                os.killpg(module, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # A held result's supervisor (its result holds secrets) is recorded under "held".
        supervisor = (job.get("supervisor") or (job.get("held") or {}).get("supervisor") or {}).get("pid")
        if supervisor and procs.is_alive(supervisor):
            procs.kill_all([supervisor])
