"""The lease end to end: real ansible-playbook over SSH (the tests' private sshd on loopback,
ControlPersist on), this project's modules and ansible-core's own in the same test.

A job started with `ASYNC_WRAPPER_LEASE=L` in the play's environment is renewed by every
async_status call on it and ended (SIGTERM to the module's group, the grace period, SIGKILL)
when no call came for L seconds. Each cancel scenario runs the same play (cancel.yml: a job that
ignores SIGTERM, `async: 600`, `poll: 2`) with ours and with stock at the same time, ends both
plays the same way once a poll has renewed ours, and then measures, from the moment the last
ansible-playbook process was gone (or the connection was cut), when the module's process group
is gone on the host:

- ours: within L + grace + 1 s (+ TOLERANCE for a loaded 2-core machine), and the job file
  holds the lease_expired result, beside the job's log (which stock's wrapper never writes);
- stock: still running STOCK_WATCH seconds later (then the test kills it).

The scenarios: (a) Ctrl-C (SIGINT to ansible-playbook's process group) with 2.19 and 2.21, the
two wrapper protocols, and SIGTERM to ansible-playbook's pid; (b) a cancel through
ansible-runner's cancel_callback (it sends SIGKILL to ansible-playbook's process group: from
ansible-core 2.19 on, the worker polling the job is in a session of its own, survives it and
keeps polling, so the job lives on until that worker is gone too; with 2.18 nothing survives);
(c) SIGKILL of every ansible-playbook process (main and workers: a controller that dies);
(d) the SSH connection cut while the play polls. And two that must live, run in the background
while the others run: (e) a poll: 0 job collected by an until-loop whose delay is under the
lease, and (f) a 60 s job with poll: 5 and a 20 s lease (ours only: stock has no lease). And (g), ours only,
with the release's action plugins, on 2.19, 2.21 and 2.22: ansible-runner's cancel and SIGKILL to
ansible-playbook's process group; the worker that polls stops polling by itself, and the module
is gone within L + grace + poll + 1 s.

The measured figures are printed and written to target/lease-figures.txt.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from harness import procs
from harness.controllers import controller as find_controller
from harness.jobs import read_job
from harness.recap import assert_recap_ok, parse_recap
from harness.sshd import running_sshd
from harness.wait import wait_until
from lease_harness import MARK_VAR, Relay, Run, wait_gone

LEASE = 6
GRACE = 1
# Seconds the jobs would run if nothing ended them. A test finds its module among the processes
# that carry its run's marker (LEASE_TEST_MARK, unique per run) in their environment, by the
# module's command line: never another run's or suite's process.
SECONDS = 597
COMMAND = f"sleep {SECONDS}"
BOUND = LEASE + GRACE + 1
# Headroom for a loaded 2-core machine, in the assertion only.
TOLERANCE = 2.0
# How long after the end of its play stock's job is watched (it must still run).
STOCK_WATCH = 2 * BOUND
LIVE_TEST = "test_polled_jobs_live_past_their_lease"


def make_pair(runs, version, tmp_path, port, key):
    controller = find_controller(version)
    ours = Run("ours", controller, tmp_path, port, key, stock=False)
    stock = Run("stock", controller, tmp_path, port, key, stock=True)
    runs += [ours, stock]
    return ours, stock


def start_pair(runs, version, tmp_path, port, key):
    """ours and stock run cancel.yml side by side; returns them, their module groups and ours'
    job id, once a poll has renewed ours' lease."""
    ours, stock = make_pair(runs, version, tmp_path, port, key)
    for run in (ours, stock):
        run.start("cancel.yml", lease=LEASE, grace=GRACE, seconds=SECONDS)
    groups = {run.name: module_group(run) for run in (ours, stock)}
    return ours, stock, groups, renewed(ours)


def module_group(run: Run):
    return wait_until(lambda: run.group(COMMAND), timeout=90,
                      what=f"{run.name}'s module `{COMMAND}` to run on the host\n{run.output()[-3000:]}")


def renewed(ours: Run, after: float | None = None) -> str:
    """Waits until a poll renewed ours' lease: the job file's mtime moved after the job ran
    (or after the wall-clock time `after`); returns the job id."""
    path = wait_until(ours.job_path, timeout=30, what="ours' job file")
    job = wait_until(lambda: "module_process" in ours.job() and ours.job(), timeout=30, what="ours' job to run")
    assert job.get("lease") == LEASE, job
    first = path.stat().st_mtime_ns if after is None else int(after * 1e9)
    wait_until(lambda: path.stat().st_mtime_ns > first, timeout=20,
               what=f"a poll to renew ours' lease\n{ours.output()[-3000:]}")
    return path.name


def wait_playbooks_gone(*runs: Run, timeout: float = 60) -> dict[str, float]:
    """Waits until no ansible-playbook process of each run is left (the main one and its
    workers); the monotonic time each run was seen without any."""
    seen: dict[str, float] = {}

    def all_gone():
        for run in runs:
            if run.name not in seen and not run.playbook_pids():
                seen[run.name] = time.monotonic()
        return len(seen) == len(runs)

    wait_until(all_gone, timeout=timeout, interval=0.02, what="every ansible-playbook process to be gone")
    return seen


def check_ours(ours: Run, jid: str, group, since: float, bound: float = BOUND) -> float:
    """ours' module group is gone within `bound` after `since`, and the job file holds the
    lease_expired result beside the job's log; returns the seconds measured."""
    gone = wait_gone(group, since=since, timeout=bound + TOLERANCE + 10)
    assert gone is not None, f"ours' module group still runs {bound + TOLERANCE + 10} s after the play ended"
    assert gone <= bound + TOLERANCE, f"ours' module group ended {gone:.2f} s after the play, bound {bound} + {TOLERANCE}"
    result = wait_until(lambda: "started" not in (job := read_job(ours.async_dir, jid)) and job, timeout=10,
                        what="ours' lease_expired result")
    assert result["failed"] is True, result
    assert result["terminated"] is True, result
    assert result["lease_expired"] is True, result
    assert result["lease"] == LEASE, result
    assert result["ansible_job_id"] == jid, result
    assert isinstance(result["child_pid"], int), result
    assert "lease" in result["msg"], result
    log = ours.async_dir / f"{jid}.log"
    assert log.exists(), "our supervisor writes a log beside the job file"
    assert f"lease_expired lease={LEASE}" in log.read_text(), log.read_text()
    return gone


def check_stock(stock: Run, group, since: float) -> float:
    """stock's module group still runs STOCK_WATCH seconds after `since`; returns how long it
    was watched, then kills it."""
    gone = wait_gone(group, since=since, timeout=STOCK_WATCH)
    watched = time.monotonic() - since
    assert gone is None, f"stock's job ended {gone:.2f} s after its play: stock has no lease"
    assert group.alive()
    assert "started" in stock.job(), stock.job()
    assert not list(stock.async_dir.glob("*.log")), "stock's wrapper writes no log"
    group.kill()
    return watched


def report(figures, scenario: str, version: str, ours_s: float, stock_s: float, extra: str = "") -> None:
    figures.add(f"{scenario} [{version}]: ours' module group gone {ours_s:.2f} s after (bound "
                f"{BOUND} s + {TOLERANCE} s); stock's still running after {stock_s:.1f} s of watching{extra}")


# --- (e), (f) in the background: polled jobs live on --------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def live_jobs(request, sshd, tmp_path_factory):
    """Starts (e) and (f) when LIVE_TEST is selected, at the start of the module: they mostly
    wait, and the minute-long job would otherwise set the suite's length. LIVE_TEST checks them."""
    if not any(item.originalname == LIVE_TEST for item in request.session.items):
        yield None
        return
    tmp = tmp_path_factory.mktemp("live")
    controller = find_controller("2.19")
    until = Run("until", controller, tmp, sshd.port, sshd.key, stock=False)
    poll5 = Run("poll5", controller, tmp, sshd.port, sshd.key, stock=False)
    seen: dict[str, dict] = {}
    ended: dict[str, float] = {}
    done = threading.Event()

    def watch():
        """Keeps each job's running record (poll: 5 removes its job file once it is over) and
        whether its log was there beside it."""
        while not done.is_set() and len(ended) < 2:
            for run in (until, poll5):
                if run.name not in ended and run.proc.poll() is not None:
                    ended[run.name] = time.monotonic() - start
                path = run.job_path()
                try:
                    job = run.job() if path else {}
                except (OSError, ValueError):
                    continue
                if run.name not in seen and "module_process" in job:
                    seen[run.name] = {**job, "log_exists": path.with_name(path.name + ".log").exists()}
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        start = time.monotonic()
        poll5.start("poll5.yml", lease=20, grace=GRACE, seconds=60)
        until.start("until.yml", lease=LEASE, grace=GRACE, seconds=14, delay=2)
        watcher.start()
        yield until, poll5, start, seen, ended
    finally:
        done.set()
        for run in (until, poll5):
            run.stop()


# --- (a) Ctrl-C, SIGTERM --------------------------------------------------------------------------

@pytest.mark.parametrize("version, how", [("2.19", "ctrl-c"), ("2.21", "ctrl-c"), ("2.19", "sigterm")])
def test_ctrl_c_or_sigterm_ends_ours_by_its_lease(sshd, runs, figures, tmp_path, version, how):
    ours, stock, groups, jid = start_pair(runs, version, tmp_path, sshd.port, sshd.key)
    for run in (ours, stock):
        if how == "ctrl-c":
            os.killpg(run.proc.pid, signal.SIGINT)  # the terminal's foreground group
        else:
            os.kill(run.proc.pid, signal.SIGTERM)  # `kill PID`: ansible-playbook passes it on to its workers
    ended = wait_playbooks_gone(ours, stock)

    ours_s = check_ours(ours, jid, groups["ours"], ended["ours"])
    stock_s = check_stock(stock, groups["stock"], ended["stock"])
    scenario = "(a) Ctrl-C during poll: 2" if how == "ctrl-c" else "(a') SIGTERM to ansible-playbook's pid"
    report(figures, scenario, version, ours_s, stock_s)


# --- (b) a cancel through ansible-runner ------------------------------------------------------------

@pytest.mark.parametrize("version", ["2.18", "2.19"])
def test_cancel_through_ansible_runner(sshd, runs, figures, tmp_path, monkeypatch, version):
    # What ansible-runner sends: it signals from this process (run_async's thread).
    sent = []
    real_killpg = os.killpg

    def recording_killpg(pgid, sig):
        sent.append((pgid, sig))
        return real_killpg(pgid, sig)

    monkeypatch.setattr(os, "killpg", recording_killpg)
    ours, stock = make_pair(runs, version, tmp_path, sshd.port, sshd.key)
    cancel = threading.Event()
    started = {}
    for run in (ours, stock):
        started[run.name] = runner_start(run, cancel)
    mains = {run.name: wait_until(lambda run=run: [p for p in run.playbook_pids() if procs.ppid(p) == os.getpid()],
                                  timeout=30, what="ansible-runner's ansible-playbook")[0]
             for run in (ours, stock)}
    groups = {run.name: module_group(run) for run in (ours, stock)}
    jid = renewed(ours)

    cancel.set()
    main_gone: dict[str, float] = {}

    def mains_gone():
        for name, pid in mains.items():
            if name not in main_gone and not procs.is_alive(pid):
                main_gone[name] = time.monotonic()
        return len(main_gone) == len(mains)

    # ansible-runner checks its cancel_callback between reads of the output (every 5 s at most).
    wait_until(mains_gone, timeout=30, interval=0.02, what="ansible-runner to end ansible-playbook")
    for name, (thread, runner) in started.items():
        thread.join(timeout=30)
        assert runner.status == "canceled", (name, runner.status)
    assert {sig for pgid, sig in sent if pgid in mains.values()} == {signal.SIGKILL}, sent

    extra = ""
    if version == "2.18":
        # Workers are in ansible-playbook's process group: the SIGKILL ends them all.
        ended = wait_playbooks_gone(ours, stock, timeout=10)
    else:
        left = {run.name: run.playbook_pids() for run in (ours, stock)}
        # From 2.19 on each worker is in a session of its own: the one polling the job is left,
        # and it goes on polling (renewing ours' lease) until it is ended too, as a container's
        # end or an operator would. The lease then runs out.
        assert left["ours"] and left["stock"], left
        renewed(ours, after=time.time() - (time.monotonic() - main_gone["ours"]))
        extra = f"; the orphaned worker kept polling (pids {left['ours']}), killed by the test"
        for pids in left.values():
            procs.kill_all(pids)
        ended = wait_playbooks_gone(ours, stock)
    ours_s = check_ours(ours, jid, groups["ours"], ended["ours"])
    stock_s = check_stock(stock, groups["stock"], ended["stock"])
    report(figures, "(b) ansible-runner cancel_callback (SIGKILL to the group)", version, ours_s, stock_s, extra)


# --- (c) kill -9 ----------------------------------------------------------------------------------

def test_kill_9_of_every_ansible_playbook_process(sshd, runs, figures, tmp_path):
    ours, stock, groups, jid = start_pair(runs, "2.19", tmp_path, sshd.port, sshd.key)
    for run in (ours, stock):
        pids = run.playbook_pids()
        assert len(pids) >= 2, pids  # the main process and the worker that polls
        procs.kill_all(pids)
    ended = wait_playbooks_gone(ours, stock)

    ours_s = check_ours(ours, jid, groups["ours"], ended["ours"])
    stock_s = check_stock(stock, groups["stock"], ended["stock"])
    report(figures, "(c) kill -9 of ansible-playbook and its workers", "2.19", ours_s, stock_s)


# --- (d) the connection cut -------------------------------------------------------------------------

def test_connection_cut_while_polling(runs, figures, tmp_path):
    # An sshd of its own: the test kills every session process it has.
    with running_sshd(tmp_path / "sshd") as sshd:
        relay = Relay(sshd.port)
        ours, stock, groups, jid = start_pair(runs, "2.19", tmp_path, relay.port, sshd.key)
        masters = {run.name: run.masters() for run in (ours, stock)}
        assert all(masters.values()), f"ControlPersist masters: {masters}"

        relay.cut()
        # What is left of the connections on either side: sshd's connections, the masters.
        sshd.kill_sessions()
        procs.kill_all(pid for run in (ours, stock) for pid in run.masters())
        cut = time.monotonic()

        ours_s = check_ours(ours, jid, groups["ours"], cut)
        # The play has not ended: ansible's poll loop takes a failed poll for a passing fault and
        # tries again every poll: seconds until its async: seconds are over.
        assert ours.proc.poll() is None and stock.proc.poll() is None
        stock_s = check_stock(stock, groups["stock"], cut)

        # The network is back: ours' play gets the lease's result at its next poll, and fails.
        relay.restore()
        wait_until(lambda: ours.proc.poll() is not None, timeout=60,
                   what=f"ours' play to end once the host is reachable again\n{ours.output()[-3000:]}")
        output = ours.output()
        assert ours.proc.returncode == 2, output[-3000:]
        assert parse_recap(output)["target"]["failed"] == 1, output[-3000:]
        assert '"lease_expired": true' in output, output[-3000:]
    report(figures, "(d) SSH connection cut while polling", "2.19", ours_s, stock_s,
           "; back after the cut, ours' play failed the task with the lease's result")


# --- (e), (f): the checks --------------------------------------------------------------------------

def test_polled_jobs_live_past_their_lease(live_jobs, figures):
    until, poll5, start, seen, ended = live_jobs
    for run, limit in ((until, 120), (poll5, 180)):
        wait_until(lambda run=run: run.proc.poll() is not None, timeout=max(limit - (time.monotonic() - start), 1),
                   what=f"{run.name}'s play to end\n{run.output()[-3000:]}")
        output = run.output()
        assert run.proc.returncode == 0, output[-5000:]
        assert_recap_ok(parse_recap(output), hosts=1, allow_ignored=True, see=output[-3000:])
    assert {name: (job.get("lease"), job["log_exists"]) for name, job in seen.items()} == \
        {"until": (LEASE, True), "poll5": (20, True)}, seen
    wait_until(lambda: len(ended) == 2, timeout=5, what="the watcher to see both plays end")
    figures.add(f"(e) poll: 0, until-loop delay 2 s, lease {LEASE} s, a 14 s job: finished normally "
                f"(play {ended['until']:.1f} s); (f) poll: 5, lease 20 s, a 60 s job: finished normally "
                f"(play {ended['poll5']:.1f} s)")
    # until.yml leaves its job file (no cleanup): the result, and nothing in its log of a lease.
    jid = until.job_path().name
    result = read_job(until.async_dir, jid)
    assert result["rc"] == 0 and result["stdout"] == "running", result
    log = (until.async_dir / f"{jid}.log").read_text()
    assert f"lease={LEASE}" in log and "lease_expired" not in log, log
    # poll: 5 cleans up after itself.
    assert poll5.job_path() is None
    assert not procs.pids_with_env(MARK_VAR, until.mark) and not procs.pids_with_env(MARK_VAR, poll5.mark)


# --- (g) with the action plugin: a cancelled play stops polling ------------------------------------

POLL = 2  # cancel.yml's poll:


def runner_start(run: Run, cancel: threading.Event):
    """ansible-runner runs cancel.yml for `run` (ansible-playbook from the run's controller);
    returns its thread and runner."""
    import ansible_runner

    run.write_config()
    private = run.dir / "runner"
    private.mkdir()
    run.extra_vars(lease=LEASE, grace=GRACE, seconds=SECONDS)
    return ansible_runner.run_async(
        private_data_dir=str(private),
        playbook=run.command("cancel.yml")[-1],
        inventory=str(run.inventory),
        extravars={"mark": run.mark, "lease": LEASE, "grace": GRACE, "seconds": SECONDS},
        # ansible-runner runs the ansible-playbook it finds on the PATH.
        envvars={**run.env(), "PATH": f"{run.controller.bin}:{os.environ['PATH']}"},
        cancel_callback=cancel.is_set,
        suppress_env_files=True,
        quiet=True,
    )


@pytest.mark.parametrize("how", ["runner-cancel", "sigkill-group"])
@pytest.mark.parametrize("version", ["2.19", "2.21", "2.22"])
def test_with_the_action_plugin_a_cancelled_play_stops_polling(sshd, runs, figures, tmp_path, version, how):
    """ours with action_plugins/async_status.py: ansible-runner's cancel, or SIGKILL to
    ansible-playbook's process group, leaves the worker that polls the job alive (2.19 on: a
    session of its own); at its next poll it sees its ansible-playbook gone and exits without
    polling, so the lease ends the job: its module is gone within lease + grace + poll + 1 s of
    ansible-playbook's end (without the plugin the worker polls on: the tests above)."""
    controller = find_controller(version)
    ours = Run("ours", controller, tmp_path, sshd.port, sshd.key, stock=False, actions=True)
    runs.append(ours)
    cancel = threading.Event()
    if how == "runner-cancel":
        thread, runner = runner_start(ours, cancel)
        main = wait_until(lambda: [p for p in ours.playbook_pids() if procs.ppid(p) == os.getpid()],
                          timeout=30, what="ansible-runner's ansible-playbook")[0]
    else:
        main = ours.start("cancel.yml", lease=LEASE, grace=GRACE, seconds=SECONDS).pid
    group = module_group(ours)
    jid = renewed(ours)
    if how == "runner-cancel":
        cancel.set()
    else:
        os.killpg(main, signal.SIGKILL)  # main is its group's leader (a session of its own)
    # ansible-runner checks its cancel_callback between reads of the output (every 5 s at most).
    wait_until(lambda: not procs.is_alive(main), timeout=30, interval=0.02, what="ansible-playbook to be killed")
    main_gone = time.monotonic()
    if how == "runner-cancel":
        thread.join(timeout=30)
        assert runner.status == "canceled", runner.status
    # The worker polling the job exits by itself at its next poll.
    wait_until(lambda: not ours.playbook_pids(), timeout=POLL + 10, interval=0.05,
               what=f"the polling worker to exit by itself\n{ours.output()[-3000:]}")
    # A poll in flight when ansible-playbook died may wait up to `poll` seconds, renewing the
    # lease as it looks at the job.
    bound = LEASE + GRACE + POLL + 1
    gone = check_ours(ours, jid, group, main_gone, bound)
    figures.add(f"(g) {how} with the action plugin [{version}]: the worker stopped polling; ours' module "
                f"group gone {gone:.2f} s after ansible-playbook (bound {bound} s + {TOLERANCE} s)")
