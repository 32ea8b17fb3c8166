"""async_job as a command: every subcommand, its output and its exit codes."""

import json
import os
import signal
import subprocess
import time

from harness.procs import is_alive
from harness.wait import poll_until, wait_until
from jobhost import PROGRAM


def test_help_and_usage_errors(host):
    done = host.async_job("--help")
    assert done.returncode == 0 and "async_job [options] list" in done.stdout
    for args in [(), ("frobnicate",), ("show",), ("gc",), ("list", "extra"), ("--bogus", "list")]:
        done = host.async_job(*args)
        assert done.returncode == 2, (args, done)
        assert done.stderr.startswith("async_job: "), done.stderr


def test_missing_async_dir_is_an_error(host):
    done = host.async_job("--async-dir", str(host.root / "nope"), "list")
    assert done.returncode == 1
    assert "does not exist" in done.stderr
    assert not (host.root / "nope").exists()


def test_list_shows_each_job_with_its_state(host):
    ok = host.start("echo '{\"rc\": 0}'")
    bad = host.start("echo '{\"failed\": true, \"msg\": \"no\"}'")
    timed_out = host.start("exec sleep 30", limit=1)
    running = host.start("exec sleep 30")
    unlimited = host.start("exec sleep 30", limit=0)
    host.running_job(running)
    host.running_job(unlimited)
    for jid in (ok, bad, timed_out):
        host.finished(jid)

    listed = host.async_job("--json", "list")
    assert listed.returncode == 0, listed
    jobs = {job["jid"]: job for job in json.loads(listed.stdout)["jobs"]}
    assert {jid: jobs[jid]["state"] for jid in jobs} == {
        ok: "finished", bad: "failed", timed_out: "timed_out", running: "running", unlimited: "running",
    }
    assert jobs[running]["time_limit"] == 60
    # 0 as given to the wrapper: no limit (null is a job whose limit is not known).
    assert jobs[unlimited]["time_limit"] == 0
    assert jobs[timed_out]["time_limit"] == 1
    assert jobs[running]["module"].startswith(str(host.tmp))
    assert jobs[running]["started"].endswith("Z")
    assert 0 <= jobs[running]["elapsed"] < 60

    table = host.async_job("list")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["JID", "STATE", "STARTED", "ELAPSED", "LIMIT", "MODULE"]
    assert any(line.startswith(running) and " running " in line for line in lines), table.stdout
    row = {line.split()[0]: line.split() for line in lines[1:]}
    assert row[running][4] == "60s" and row[unlimited][4] == "none", table.stdout


def test_show_prints_result_and_log(host):
    jid = host.start("echo '{\"rc\": 0, \"hello\": \"world\"}'")
    host.finished(jid)
    shown = host.async_job("show", jid)
    assert shown.returncode == 0
    assert '"hello": "world"' in shown.stdout
    assert " invoked protocol=legacy time_limit=60" in shown.stdout
    as_json = json.loads(host.async_job("--json", "show", jid).stdout)
    assert as_json["file"]["hello"] == "world"
    assert [line.split()[1] for line in as_json["log"]][:3] == ["invoked", "started", "exited"]

    missing = host.async_job("show", "j0.0")
    assert missing.returncode == 3 and "could not find job j0.0" in missing.stderr
    invalid = host.async_job("show", "../x")
    assert invalid.returncode == 2 and "invalid job id" in invalid.stderr


def test_terminate_a_running_job(host):
    jid = host.start("exec sleep 60")
    module = host.running_job(jid)["module_process"]["pid"]
    done = host.async_job("terminate", jid)
    assert done.returncode == 0, done
    assert f"job {jid} was terminated" in done.stdout
    result = host.job(jid)
    assert result["failed"] is True and result["terminated"] is True
    assert result["msg"].startswith("the job was terminated on request"), result
    assert not is_alive(module)
    log = (host.async_dir / f"{jid}.log").read_text()
    assert " terminate requested\n" in log

    again = host.async_job("--json", "terminate", jid)
    assert again.returncode == 0
    assert json.loads(again.stdout)["changed"] is False
    assert json.loads(again.stdout)["msg"] == f"job {jid} was not terminated: it is terminated"


def test_terminate_a_module_that_ignores_sigterm(host):
    jid = host.start("trap '' TERM\nwhile :; do sleep 0.05; done", ASYNC_WRAPPER_KILL_GRACE="0.5")
    module = host.running_job(jid)["module_process"]["pid"]
    done = host.async_job("terminate", jid)
    assert done.returncode == 0, done
    assert not is_alive(module)
    assert host.job(jid)["terminated"] is True
    assert " ended signal=SIGKILL\n" in (host.async_dir / f"{jid}.log").read_text()


def test_terminate_a_lost_job_whose_module_still_runs(host):
    jid = host.start("exec sleep 60")
    job = host.running_job(jid)
    os.kill(job["supervisor"]["pid"], signal.SIGKILL)
    wait_until(lambda: not is_alive(job["supervisor"]["pid"]), timeout=20, what="the supervisor to die")
    listed = json.loads(host.async_job("--json", "list").stdout)["jobs"]
    assert [j["state"] for j in listed] == ["lost"]

    done = host.async_job("terminate", jid)
    assert done.returncode == 0, done
    assert not is_alive(job["module_process"]["pid"])
    assert host.job(jid)["terminated"] is True


def test_terminate_uses_the_grace_period_the_job_file_records(host):
    # The job's grace period (5 s) is longer than the default (2 s); its module needs 3 s after
    # SIGTERM to finish cleanly. With the log (which also mentions the grace) gone and the
    # supervisor lost, only the running job file can tell async_job to wait that long.
    done_mark = host.root / "cleaned-up"
    jid = host.start(f"trap 'sleep 3; echo ok > {done_mark}; exit 0' TERM\nwhile :; do sleep 0.05; done",
                     ASYNC_WRAPPER_KILL_GRACE="5")
    job = host.running_job(jid)
    assert job["kill_grace"] == 5
    os.kill(job["supervisor"]["pid"], signal.SIGKILL)
    wait_until(lambda: not is_alive(job["supervisor"]["pid"]), timeout=20, what="the supervisor to die")
    (host.async_dir / f"{jid}.log").unlink()

    done = host.async_job("terminate", jid)
    assert done.returncode == 0, done
    assert done_mark.read_text() == "ok\n", "the module was killed before its grace period ended"
    assert host.job(jid)["terminated"] is True


def test_terminate_unknown_and_invalid_jobs_signal_nothing(host):
    jid = host.start("exec sleep 60")
    host.running_job(jid)
    assert host.async_job("terminate", "j0.0").returncode == 3
    assert host.async_job("terminate", "../" + jid).returncode == 2
    assert host.job(jid)["started"] is True  # still running


def test_terminate_many_jobs_at_once_each_with_its_outcome(host):
    # Modules that ignore SIGTERM: each takes its grace period, and they are ended together.
    body = "trap '' TERM\nwhile :; do sleep 0.05; done"
    jids = [host.start(body, ASYNC_WRAPPER_KILL_GRACE="1") for _ in range(3)]
    modules = [host.running_job(jid)["module_process"]["pid"] for jid in jids]
    done_before = host.start("exit 0")
    host.finished(done_before)
    run = host.async_job("--json", "terminate", *jids, done_before, "j0.0")
    assert run.returncode == 0, run
    answer = json.loads(run.stdout)
    assert answer["changed"] is True and answer["terminated"] == jids, answer
    outcomes = {job["ansible_job_id"]: job for job in answer["jobs"]}
    assert [job["ansible_job_id"] for job in answer["jobs"]] == [*jids, done_before, "j0.0"]
    assert all(outcomes[jid]["state_before"] == "running" and outcomes[jid]["changed"] for jid in jids)
    assert outcomes[done_before]["changed"] is False and outcomes["j0.0"]["state_before"] == "missing"
    assert not any(is_alive(pid) for pid in modules)
    assert all(host.job(jid)["terminated"] is True for jid in jids)
    # The grace periods overlap: every job was asked to end before any of them was killed.
    events = {jid: (host.async_dir / f"{jid}.log").read_text().splitlines() for jid in jids}
    asked = [line.split()[0] for jid in jids for line in events[jid] if line.endswith(" terminate requested")]
    killed = [line.split()[0] for jid in jids for line in events[jid] if " ended signal=SIGKILL" in line]
    assert len(asked) == len(killed) == 3, events
    assert max(asked) <= min(killed), events


def test_terminate_all_running_jobs_narrowed_by_age_and_module(host):
    old_command = host.start("exec sleep 60", name="AnsiballZ_command.py")
    old_shell = host.start("exec sleep 60", name="AnsiballZ_shell.py")
    for jid in (old_command, old_shell):
        host.running_job(jid)
    time.sleep(1.2)  # the age the next filter needs: real time has to pass
    young_command = host.start("exec sleep 60", name="AnsiballZ_command2.py")
    host.running_job(young_command)

    # A dry run names them and ends nothing.
    dry = host.async_job("--json", "terminate", "--all", "--dry-run")
    assert dry.returncode == 0, dry
    assert sorted(json.loads(dry.stdout)["would_terminate"]) == sorted([old_command, old_shell, young_command])
    assert all(host.job(j)["started"] is True for j in (old_command, old_shell, young_command))

    # Only jobs older than 1 s that run the command module.
    run = host.async_job("--json", "terminate", "--all", "--older-than", "1s", "--module", "ansible.builtin.command")
    assert run.returncode == 0, run
    assert json.loads(run.stdout)["terminated"] == [old_command]
    assert host.job(old_shell)["started"] is True and host.job(young_command)["started"] is True

    run = host.async_job("terminate", "--all")
    assert run.returncode == 0, run
    assert "terminated 2 of 2 job(s)" in run.stdout
    assert host.job(old_shell)["terminated"] is True and host.job(young_command)["terminated"] is True
    bad = host.async_job("terminate", "j1.1", "../x")
    assert bad.returncode == 2 and "invalid job id" in bad.stderr


def test_gc_removes_old_finished_jobs_only(host):
    done_jid = host.start("echo '{}'")
    running = host.start("exec sleep 60")
    host.finished(done_jid)
    host.running_job(running)

    dry = host.async_job("gc", "--older-than", "0", "--dry-run")
    assert dry.returncode == 0 and f"would remove {done_jid}" in dry.stdout
    assert (host.async_dir / done_jid).exists()

    young = host.async_job("--json", "gc", "--older-than", "1h")
    assert json.loads(young.stdout)["removed"] == []

    gc = host.async_job("--json", "gc", "--older-than=0s")
    assert gc.returncode == 0
    assert json.loads(gc.stdout) == {"changed": True, "removed": [done_jid], "kept_running": 1, "dry_run": False}
    assert not (host.async_dir / done_jid).exists()
    assert not (host.async_dir / f"{done_jid}.log").exists()
    assert (host.async_dir / running).exists()

    negative = host.async_job("gc", "--older-than", "-1d")
    assert negative.returncode == 2 and "must not be negative" in negative.stderr


def test_wait_returns_each_result_in_order_once_the_last_job_ends(host):
    """Real jobs: one that waits for a file (so the test says when it ends), a quick one, a
    failing one; the wait returns the moment the last one's result is written."""
    gate = host.root / "gate"
    slow = host.start(f"while [ ! -e {gate} ]; do sleep 0.05; done; echo '{{\"rc\": 0, \"said\": \"slow\"}}'")
    quick = host.start("echo '{\"rc\": 0, \"said\": \"quick\"}'")
    failing = host.start("echo '{\"rc\": 3, \"failed\": true, \"msg\": \"boom\"}'")
    host.finished(quick)
    host.finished(failing)
    waiting = subprocess.Popen([str(PROGRAM), "async_job", "--json", "wait", slow, quick, failing,
                                "--timeout", "60", "--cleanup"], env=host.env(), stdout=subprocess.PIPE, text=True)
    try:
        # Still waiting for the slow job.
        assert poll_until(lambda: waiting.poll() is not None, timeout=1) is False
        gate.touch()
        out, _ = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    result = json.loads(out)
    assert waiting.returncode == 1, result  # a job failed
    assert [r["ansible_job_id"] for r in result["results"]] == [slow, quick, failing]
    assert [r.get("said") for r in result["results"]] == ["slow", "quick", None]
    assert result["failed_jobs"] == [failing] and result["finished"] is True
    assert sorted(result["removed"]) == sorted([slow, quick, failing])
    assert not [p for p in host.async_dir.iterdir() if not p.name.startswith(".")]


def test_wait_counts_a_lost_job_as_ended_and_failed(host):
    jid = host.start("exec sleep 60")
    job = host.running_job(jid)
    os.kill(job["supervisor"]["pid"], signal.SIGKILL)
    try:
        done = host.async_job("wait", jid, "--timeout", "30")
        assert done.returncode == 1, done
        assert done.stdout.splitlines()[0].startswith(f"{jid}  lost  the job was lost: "), done.stdout
        assert done.stdout.splitlines()[-1] == f"1 of 1 job(s) failed: {jid}"
    finally:
        os.killpg(job["module_process"]["pid"], signal.SIGKILL)


def test_wait_times_out_naming_the_jobs_still_running_which_run_on(host):
    jid = host.start("exec sleep 60")
    job = host.running_job(jid)
    done = host.async_job("--json", "wait", jid, "--timeout", "1", "--cleanup")
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["running_jobs"] == [jid] and result["removed"] == [], result
    assert "timed out after 1 s" in result["msg"]
    assert is_alive(job["module_process"]["pid"]) and (host.async_dir / jid).exists()
    assert host.async_job("terminate", jid).returncode == 0
