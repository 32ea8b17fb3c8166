"""No secret rests in a job file: real ansible-playbook (2.19, 2.21, 2.22) with this project's
library and with ansible's own async modules (the `.py.orig` the venv set-up kept), side by
side. `modules/secret_echo.py` takes a `no_log` option and returns it (ansible-core 2.22 keeps
its real value in the result and lists it in `_ansible_new_secrets`; earlier ones put a
placeholder in its place); a task with `no_log: true` returns its value as it is everywhere.

For each controller: playbooks/secrets.yml with stock and with ours (a polled task, an
until-loop that never cleans up, an async_job wait with ours), asserting that both display no
secret, register the same values, and that no file under our async dir holds the secret (stock's
does); then, with ours, one held job's supervisor is killed and another's boot id rewritten (a
reboot), and playbooks/lost.yml gets a lost result that says why for both, then cleans up.
Needs `make build`; three playbook runs per controller.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.controllers import controller as find_controller
from harness.env import ansible_env
from harness.jobs import kill_jobs
from harness.paths import LIBRARY
from harness.procs import is_alive, kill_all, processes_matching
from harness.recap import assert_recap_ok, parse_recap
from harness.wait import wait_until

HERE = Path(__file__).resolve().parent
PLACEHOLDER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
CONTROLLERS = ["2.19", "2.21", "2.22"]


class Run:
    def __init__(self, controller, tmp: Path, library: Path, secret: str):
        self.controller, self.tmp, self.library, self.secret = controller, tmp, library, secret
        self.async_dir = tmp / "async"

    def __call__(self, playbook: str, summary: str, **extra) -> tuple[subprocess.CompletedProcess, object]:
        inventory = self.tmp / "inventory"
        inventory.write_text(f"testhost ansible_connection=local ansible_python_interpreter={self.controller.python}"
                             f" ansible_async_dir={self.async_dir}\n")
        env = ansible_env(ANSIBLE_LIBRARY=f"{self.library}:{HERE / 'modules'}",
                          ANSIBLE_LOCAL_TEMP=str(self.tmp / "local"), ANSIBLE_REMOTE_TEMP=str(self.tmp / "remote"),
                          SECRETS_TEST_VALUE=self.secret)
        out = self.tmp / summary
        extra_vars = json.dumps({"summary": str(out), **extra})
        run = subprocess.run([str(self.controller.ansible_playbook), "-v", "-i", str(inventory),
                              str(HERE / "playbooks" / playbook), "-e", extra_vars],
                             env=env, capture_output=True, text=True, timeout=300)
        sys.stdout.write(run.stdout[-20000:])
        sys.stderr.write(run.stderr[-5000:])
        assert run.returncode == 0, f"ansible-playbook exited {run.returncode}"
        assert_recap_ok(parse_recap(run.stdout))
        return run, json.loads(out.read_text())

    def files_holding(self, text: str) -> list[Path]:
        """Every regular file under the async dir whose bytes hold `text`."""
        found = []
        for root, _, names in os.walk(self.async_dir):
            for name in names:
                path = Path(root) / name
                if stat.S_ISREG(path.lstat().st_mode) and text.encode() in path.read_bytes():
                    found.append(path)
        return found

    def job(self, jid: str) -> dict:
        return json.loads((self.async_dir / jid).read_text())


@pytest.fixture(params=CONTROLLERS)
def controller(request):
    return find_controller(request.param)


def test_no_secret_rests_in_a_job_file_and_a_gone_supervisor_is_a_lost_job(controller, tmp_path):
    secret = "pw-" + secrets.token_hex(12)
    stock_lib = controller.stock_library(tmp_path / "stock-library")
    shutil.copy(LIBRARY / "async_job", stock_lib / "async_job")  # only so the playbook parses
    stock = Run(controller, tmp_path / "stock", stock_lib, secret)
    ours = Run(controller, tmp_path / "ours", LIBRARY, secret)
    for run in (stock, ours):
        run.tmp.mkdir()
    try:
        stock_run, stock_got = stock("secrets.yml", "stock.json", stock=True)
        ours_run, got = ours("secrets.yml", "ours.json", stock=False)

        # Masked on display as with stock; registered as with stock.
        assert secret not in stock_run.stdout and secret not in ours_run.stdout
        shown = PLACEHOLDER if controller.version != "2.22" else secret
        assert (got["polled"], got["collected"], got["waited"]) == (shown, shown, shown)
        assert got["nolog"] == [secret, secret]
        assert {k: got[k] for k in ("polled", "collected", "nolog")} == \
            {k: stock_got[k] for k in ("polled", "collected", "nolog")}

        # On disk: stock's uncollected no_log jobs hold it in clear; nothing of ours does.
        assert stock.files_holding(secret), "stock leaves it in its job files (what this fixes)"
        assert ours.files_holding(secret) == []
        held = {jid: ours.job(jid) for jid in got["nolog_jids"]}
        if controller.version == "2.22":
            held[got["collected_jid"]] = ours.job(got["collected_jid"])
        for jid, job in held.items():
            assert "started" not in job and job["failed"] is True, job
            assert job["held"]["state"] == "finished" and job["msg"].startswith("the result holds secrets"), job
            assert is_alive(job["held"]["supervisor"]["pid"])
        # The supervisors of the jobs that were cleaned up (the polled one, the waited one) are
        # gone; those of the held files, and only those, hold their results.
        supervisors = {pid for pid, _ in processes_matching(f"{ours.async_dir}/.bin/ansible-async-")}
        assert supervisors == {job["held"]["supervisor"]["pid"] for job in held.values()}, (supervisors, held)
        assert [held[jid]["held"]["reason"] for jid in got["nolog_jids"]] == ["no_log", "no_log"]
        if controller.version == "2.22":
            # The controller knows the secret from the polled task's result by then: it passes it
            # to the module as a known secret, and the module does not list it as new.
            assert held[got["collected_jid"]]["held"]["reason"] == "secret_args"
        if controller.version != "2.22":
            # No secret in the result (the placeholder): written as always.
            assert "held" not in ours.job(got["collected_jid"])

        # The supervisor of one is killed; the other's file says it is of another boot.
        killed, rebooted = got["nolog_jids"]
        killed_pid = held[killed]["held"]["supervisor"]["pid"]
        os.kill(killed_pid, signal.SIGKILL)
        wait_until(lambda: not is_alive(killed_pid), timeout=10, what="the killed supervisor to be gone")
        job = held[rebooted]
        job["held"]["supervisor"]["boot_id"] = "00000000-0000-0000-0000-000000000000"
        (ours.async_dir / rebooted).write_text(json.dumps(job))
        _, statuses = ours("lost.yml", "lost.json", jids=[killed, rebooted])
        for status in statuses:
            assert (status["failed"], status["finished"]) == (True, True), status
            assert status["msg"].startswith("the job's result was lost: it held secrets (no_log), so it was kept "
                                            "only in the memory of its supervisor"), status
            assert "no longer running" in status["msg"]
        # The cleanup removed both files, their logs and the killed one's socket.
        left = {p.name for p in ours.async_dir.iterdir()}
        assert not left & {killed, rebooted, f"{killed}.log", f"{rebooted}.log",
                           held[killed]["held"]["socket"]}, left
    finally:
        kill_jobs(ours.async_dir)
        # Those whose files the test rewrote or the cleanup removed.
        kill_all([pid for pid, _ in processes_matching(f"{ours.async_dir}/.bin/ansible-async-")])
        kill_jobs(stock.async_dir)
