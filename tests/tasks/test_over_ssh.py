"""Async tasks over real OpenSSH, with become, across a 50-host inventory.

Each test runs with both controllers (ansible-core 2.19 and 2.21) against the private sshd of
tests/harness/ssh_fixtures.py. The playbooks (playbooks/) assert on what ansible reports; these tests check the
recap and what is left on disk and in the process table.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.procs import cmdline, comm, is_alive
from harness.sshd import running_sshd
from harness.wait import wait_until
from harness.become_users import ASYNC_USER, NOHOME_USER
from harness.ssh_sandbox import STOCK, Ansible, async_wrapper_pids, home_of, marked_pids, require_user, stock_library

SCALE_HOSTS = int(os.environ.get("ASYNC_SSH_SCALE_HOSTS", "50"))  # fewer only to try things out
SCALE_FORKS = 25
# A run of the scale playbook takes a few minutes on 2 cores: it runs once, with this
# controller (the other suites cover both wrapper protocols); the stock modules' run for
# comparison only when ASYNC_SSH_STOCK is set (=all: on both controllers, ours too).
SCALE_CONTROLLER = "2.19"
STOCK_CONTROLLERS = ("2.19", "2.21") if STOCK == "all" else ("2.19",) if STOCK else ()


def job_entries(async_dir: Path) -> list[str]:
    """What is in an async dir besides the launcher's program cache (`.bin`)."""
    if not async_dir.exists():
        return []
    return sorted(name for name in os.listdir(async_dir) if name != ".bin")


def leftover_tmp(remote_tmp: Path) -> list[str]:
    return sorted(os.listdir(remote_tmp)) if remote_tmp.exists() else []


def no_jobs_left(ansible: Ansible, deadline: float = 20) -> None:
    """None of this test's jobs (supervisor or module) is still running."""
    wait_until(lambda: not marked_pids(ansible.mark), timeout=deadline,
               what=f"the test's jobs to end: {[cmdline(p) for p in marked_pids(ansible.mark)]}")


def become_tmp_dirs(user: str) -> set[Path]:
    """ansible's tmp dirs for an unprivileged become user (system_tmpdirs), owned by `user`."""
    uid = pwd.getpwnam(user).pw_uid
    found = set()
    for base in (Path("/var/tmp"), Path("/tmp")):
        for path in base.glob("ansible-tmp-*"):
            try:
                if path.lstat().st_uid == uid:
                    found.add(path)
            except OSError:
                pass
    return found


def read_job(async_dir: Path, jid: str) -> dict:
    return json.loads((async_dir / jid).read_text())


# --- fire and forget survives the connection ------------------------------------------------------

def start_and_release(ansible: Ansible, *, shared: bool, drop: bool) -> tuple[str, int]:
    """Runs ssh_start_job.yml, checks that its job outlives the run (and every SSH connection), then
    lets the job finish. Returns the job id and its supervisor's pid."""
    inventory = ansible.inventory(1)
    release = ansible.tmp / "release"
    extra = {"release_file": str(release), "sshd_pid": ansible.sshd.pid, "drop_connections": drop}
    first = ansible.run("ssh_start_job.yml", inventory, shared=shared, extra_vars=extra)
    first.assert_ok(hosts=1)

    jid = (ansible.tmp / "jid-h01").read_text().strip()
    job = read_job(ansible.async_dir, jid)
    assert job["started"] is True and job["finished"] is False and job["ansible_job_id"] == jid, job
    # Our wrapper records its supervisor; ansible's stock one does not.
    assert "supervisor" in job, f"not a job of the native async_wrapper: {job}"
    supervisor = job["supervisor"]["pid"]

    # ansible-playbook has exited. Without connection sharing no SSH connection is left at all;
    # with it, the connection masters the run opened again after the drop are closed now.
    if shared:
        ansible.stop_connections()
    wait_until(lambda: not ansible.sshd.session_pids(), timeout=15, what="every sshd session to end")
    assert is_alive(supervisor), f"the supervisor {supervisor} of {jid} died with the connection"
    assert "async_wrapper" in cmdline(supervisor), cmdline(supervisor)
    assert supervisor not in ansible.sshd.session_pids()
    # Still waiting for the release file: the job is running.
    assert read_job(ansible.async_dir, jid)["finished"] is False

    release.touch()
    wait_until(lambda: not is_alive(supervisor), timeout=30, what=f"the supervisor of {jid} to exit")
    return jid, supervisor


def test_poll0_job_survives_the_connection(ansible):
    """ControlMaster off: every task is its own SSH connection, all gone when the run ends."""
    jid, _ = start_and_release(ansible, shared=False, drop=False)
    second = ansible.run("ssh_collect_job.yml", ansible.inventory(1), shared=False)
    second.assert_ok(hosts=1)
    assert not (ansible.async_dir / jid).exists()
    assert job_entries(ansible.async_dir) == []
    no_jobs_left(ansible)
    wait_until(lambda: not leftover_tmp(ansible.remote_tmp), timeout=10,
               what=f"remote tmp dirs to go: {leftover_tmp(ansible.remote_tmp)}")


def test_a_dropped_connection_leaves_what_its_session_started_running(tmp_path):
    """What the tests call a dropped connection (Sshd.kill_sessions, drop_connections.py) ends
    sshd's connections only, as a network failure does: a command the session started ends on
    its own, never SIGKILLed halfway (a login shell's rc files may hold a lock then)."""
    with running_sshd(tmp_path / "sshd") as sshd:
        marker = tmp_path / "finished"
        client = subprocess.Popen(sshd.ssh(f"sleep 2; echo done > {marker}"), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: any("sleep 2" in cmdline(p) for p in sshd.session_pids()), timeout=30,
                       what="the session's command to start")
            before = {p: comm(p) for p in sshd.session_pids()}
            killed = sshd.kill_sessions()
            spared = [name for p, name in before.items() if p not in killed]
            assert killed and all(before.get(p, "").startswith("sshd") for p in killed), (before, killed)
            assert spared and not any(name.startswith("sshd") for name in spared), (before, killed)
            client.wait(timeout=30)
            wait_until(marker.exists, timeout=30, what="the command to finish on its own")
            assert marker.read_text() == "done\n"
        finally:
            client.kill()
            client.wait()


def test_job_survives_dropped_connection(ansible):
    """The sshd sessions are SIGKILLed right after the wrapper replied (ControlPersist on, so the
    connection would otherwise have stayed up); the job runs on and a later run collects it."""
    jid, _ = start_and_release(ansible, shared=True, drop=True)
    second = ansible.run("ssh_collect_job.yml", ansible.inventory(1), shared=True)
    second.assert_ok(hosts=1)
    assert job_entries(ansible.async_dir) == []
    no_jobs_left(ansible)


# --- poll: N, cleanup, async dirs ----------------------------------------------------------------

@pytest.mark.parametrize("pipelining", [False, True], ids=["pipelining-off", "pipelining-on"])
def test_poll_cleanup_and_async_dirs(ansible, pipelining):
    custom = ansible.tmp / "custom async" / "nested"
    result = ansible.run("ssh_poll.yml", ansible.inventory(1), pipelining=pipelining,
                         extra_vars={"remote_home": str(home_of("root"))})
    result.assert_ok(hosts=1)
    # Two tasks fail on purpose (ignore_errors): a polled one and a collected one.
    assert result.recap["h01"]["ignored"] == 2, result.recap
    mode = stat.S_IMODE(os.stat(ansible.async_dir).st_mode)
    assert mode == 0o700, oct(mode)
    assert job_entries(ansible.async_dir) == []
    assert job_entries(custom) == []
    assert (custom / ".bin").is_dir(), "the launcher caches its program in the custom async dir"
    no_jobs_left(ansible)
    wait_until(lambda: not leftover_tmp(ansible.remote_tmp), timeout=10,
               what=f"remote tmp dirs to go: {leftover_tmp(ansible.remote_tmp)}")


# --- become -------------------------------------------------------------------------------------

def test_become_unprivileged_user(ansible):
    require_user(ASYNC_USER)
    home = home_of(ASYNC_USER)
    # This run's own async dir in the user's home (`~/.ansible_async-<mark>`, which the play
    # sets): what other runs (stock's wrapper among them) left in the default one never matters.
    async_dir = home / f".ansible_async-{ansible.mark}"
    before = become_tmp_dirs(ASYNC_USER)
    try:
        result = ansible.run("ssh_become.yml", ansible.inventory(1),
                             extra_vars={"async_user": ASYNC_USER, "async_user_home": str(home)})
        result.assert_ok(hosts=1)
        check_become_run(ansible, home, async_dir, before)
    finally:
        shutil.rmtree(async_dir, ignore_errors=True)


def check_become_run(ansible, home: Path, async_dir: Path, before: set[Path]) -> None:
    # The wrapper, running as asyncuser, removed ansible's tmp dirs (in /var/tmp) of its jobs.
    wait_until(lambda: not (become_tmp_dirs(ASYNC_USER) - before), timeout=30,
               what=f"the jobs' tmp dirs to go: {become_tmp_dirs(ASYNC_USER) - before}")
    info = os.stat(async_dir)
    owner = home.stat().st_uid
    assert info.st_uid == owner and stat.S_IMODE(info.st_mode) == 0o700, (info.st_uid, oct(info.st_mode))
    jids = (ansible.tmp / "jid-h01").read_text().split()
    assert len(jids) == 2, jids
    for jid in jids:
        left = [name for name in job_entries(async_dir) if name.startswith(jid)]
        assert not left, f"job {jid} left {left} in {async_dir}"
    cached = list((async_dir / ".bin").iterdir())
    assert cached and all(p.stat().st_uid == owner for p in cached), cached
    no_jobs_left(ansible)


def test_become_user_without_home_fails_naming_the_dir(ansible):
    require_user(NOHOME_USER)
    home = home_of(NOHOME_USER)
    assert not home.exists(), f"{home} exists: the fault test needs a home that does not"
    before = become_tmp_dirs(NOHOME_USER)
    try:
        result = ansible.run("ssh_nohome.yml", ansible.inventory(1), timeout=120,
                             extra_vars={"nohome_user": NOHOME_USER, "nohome_dir": str(home)})
    finally:
        # A wrapper that fails before the job starts leaves ansible's tmp dir (in /var/tmp for an
        # unprivileged become user) behind: the controller forgets it once an async call
        # returns, and stock ansible leaves it too. Remove what this test left.
        left = become_tmp_dirs(NOHOME_USER) - before
        for path in left:
            shutil.rmtree(path, ignore_errors=True)
    print(f"ansible tmp dirs left by the failed async calls (removed): {sorted(map(str, left))}")
    result.assert_ok(hosts=1)
    assert result.recap["h01"]["ignored"] == 2, result.recap
    assert "could not create directory" in result.stdout
    assert not home.exists()
    no_jobs_left(ansible, deadline=5)


# --- scale --------------------------------------------------------------------------------------

def run_scale(ansible: Ansible, label: str, library: Path | None = None):
    async_dir = ansible.tmp / f"async-{label}"
    inventory = ansible.inventory(SCALE_HOSTS)
    kwargs = {"library": library} if library else {}
    result = ansible.run("ssh_scale.yml", inventory, forks=SCALE_FORKS, timeout=900,
                         extra_vars={"test_async_dir": str(async_dir)}, **kwargs)
    result.assert_ok(hosts=SCALE_HOSTS, allow_ignored=False)
    for host, counts in result.recap.items():
        assert counts["ok"] >= 5, (host, counts)
    # No job file left, no async_wrapper (nor any job) still running, no tmp dir left.
    assert job_entries(async_dir) == [], job_entries(async_dir)
    wait_until(lambda: not async_wrapper_pids(ansible.mark), timeout=10,
               what=f"async_wrapper processes to end: {async_wrapper_pids(ansible.mark)}")
    no_jobs_left(ansible, deadline=10)
    wait_until(lambda: not leftover_tmp(ansible.remote_tmp), timeout=10,
               what=f"remote tmp dirs to go: {leftover_tmp(ansible.remote_tmp)}")
    ansible.stop_connections()
    return result, async_dir


def test_scale_50_hosts(ansible, timings):
    version = ansible.controller.version
    if version != SCALE_CONTROLLER and version not in STOCK_CONTROLLERS:
        pytest.skip(f"the scale test runs with ansible-core {SCALE_CONTROLLER} (ASYNC_SSH_STOCK=all: both)")
    ours, async_dir = run_scale(ansible, "native")
    assert (async_dir / ".bin").is_dir(), "the native launcher did not run"
    timings.add(f"ansible-core {version}: {SCALE_HOSTS} hosts x 3 jobs, forks {SCALE_FORKS}: "
                f"native {ours.seconds:.1f}s")
    if version not in STOCK_CONTROLLERS:
        return
    stock, stock_dir = run_scale(ansible, "stock", stock_library(ansible))
    assert not (stock_dir / ".bin").exists(), "the stock run used the native launcher"
    timings.add(f"ansible-core {version}: {SCALE_HOSTS} hosts x 3 jobs, forks {SCALE_FORKS}: "
                f"stock {stock.seconds:.1f}s, native {ours.seconds:.1f}s, "
                f"native/stock {ours.seconds / stock.seconds:.2f}")
