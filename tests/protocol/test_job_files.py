"""The sample job files in tests/protocol/jobfiles/samples against the two writers: the native program
(library/async_wrapper) and the portable fallback (tests/harness/fallback-library.sh) write each
record with the sample's keys and value types. The record types and the Rust readers are tested
against the same files in crates/async-core and crates/async-status, the async_status script's
own answers in tests/launcher.

Needs `make build`.
"""

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from harness.jobs import kill_jobs, wait_finished, wait_running

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "jobfiles" / "samples"


def sample(name):
    return json.loads((SAMPLES / name).read_text())


def shape(value):
    """The keys of a record and the JSON type of each value (a number is a number)."""
    def kind(v):
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return "number"
        if isinstance(v, dict):
            return shape(v)
        return type(v).__name__
    return {key: kind(v) for key, v in value.items()}


class Writer:
    """One wrapper (native or fallback) starting jobs as ansible does, in a private async dir."""

    def __init__(self, kind, library, tmp):
        self.kind, self.library, self.tmp = kind, library, tmp
        self.async_dir = tmp / "async"
        self.env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "ANSIBLE_ASYNC_DIR": str(self.async_dir)}
        self.modules = 0

    def start(self, body, limit, env=None, limit_fsize=None):
        self.modules += 1
        # A tmp dir each: a job removes its own when it is over.
        module = self.tmp / f"ansible-tmp-1-2-{self.modules}" / "m"
        module.parent.mkdir(exist_ok=True)
        module.write_text("#!/bin/sh\n" + body)
        module.chmod(0o755)
        prlimit = ["prlimit", f"--fsize={limit_fsize}"] if limit_fsize else []
        run = subprocess.run([*prlimit, "/bin/sh", str(self.library / "async_wrapper"), "j1", str(limit), str(module),
                              "_"], env=dict(self.env, **(env or {})), capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        return json.loads(run.stdout)["ansible_job_id"]

    def running(self, jid):
        return wait_running(self.async_dir, jid, timeout=30)

    def result(self, jid):
        return wait_finished(self.async_dir, jid, timeout=30)

    def log(self, jid):
        """The job log's events, without their times."""
        return [line.split(" ", 1)[1] for line in (self.async_dir / f"{jid}.log").read_text().splitlines()]


@pytest.fixture(params=["native", "fallback"])
def writer(request, libraries, tmp_path):
    w = Writer(request.param, libraries[request.param], tmp_path)
    yield w
    kill_jobs(w.async_dir)


def test_running_and_terminated_records_have_the_samples_shape(writer):
    jid = writer.start("exec sleep 60", 120)
    marker = writer.running(jid)
    expected = shape(sample("running.json"))
    if writer.kind == "fallback":
        assert marker.pop("wrapper") == "fallback", "the fallback says who wrote the file"
        # Its jobs show no progress (their status is the Python answer): it records no no_log.
        expected.pop("no_log")
    else:
        assert marker["no_log"] is True, "a module whose arguments do not say is taken as no_log"
    assert shape(marker) == expected
    assert (marker["ansible_job_id"], marker["time_limit"], marker["kill_grace"]) == (jid, 120, 2)
    os.kill(marker["supervisor"]["pid"], signal.SIGUSR1)  # what async_job terminate sends
    result = writer.result(jid)
    assert shape(result) == shape(sample("terminated.json"))
    assert result["msg"] == sample("terminated.json")["msg"]
    assert result["child_pid"] == marker["module_process"]["pid"]


def test_timed_out_record_is_the_sample_but_for_the_pid_and_times(writer):
    jid = writer.start("exec sleep 60", 1, env={"ASYNC_WRAPPER_EXACT_LIMIT": "1"})
    marker = writer.running(jid)
    result = writer.result(jid)
    assert 1.0 <= result["elapsed"] < 10, result
    assert result == dict(sample("timed-out.json"), child_pid=marker["module_process"]["pid"], time_limit=1,
                          elapsed=result["elapsed"])


def test_no_result_record_has_the_samples_shape(writer):
    jid = writer.start("echo 'Traceback (most recent call last):'; echo oops >&2; exit 1", 30)
    result = writer.result(jid)
    assert shape(result) == shape(sample("no-result.json"))
    assert result["msg"] == ("The module did not return a JSON result: No start of json char found"
                             " (it exited with status 1)")
    assert (result["data"], result["stderr"], result["ansible_job_id"]) == (
        "Traceback (most recent call last):\n", "oops\n", jid)


def test_a_modules_result_is_kept_as_it_is(writer):
    module_result = sample("finished.json")
    jid = writer.start(f"cat <<'EOF'\n{json.dumps(module_result)}\nEOF\n", 30)
    assert writer.result(jid) == module_result


def test_output_that_is_not_utf8_is_kept_as_ansibles_wrapper_keeps_it(writer):
    # A module's JSON with a lone surrogate escape (Python's json with strict UTF-8 off), and
    # stderr bytes that are not UTF-8: ansible-core's wrapper writes both as \udcXX escapes.
    jid = writer.start("printf '%s\\n' '{\"stdout\": \"caf\\udce9\", \"rc\": 0}'; printf 'caf\\351\\n' >&2", 30)
    writer.result(jid)
    raw = (writer.async_dir / jid).read_bytes()
    assert b'"stdout":"caf\\udce9"' in raw, raw
    assert b'"stderr":"caf\\udce9\\n"' in raw, raw
    assert json.loads(raw) == {"stdout": "caf\udce9", "rc": 0, "stderr": "caf\udce9\n"}


def test_expired_record_is_the_sample_but_for_the_lease_and_pid(writer):
    jid = writer.start("exec sleep 60", 120, env={"ASYNC_WRAPPER_LEASE": "1"})
    marker = writer.running(jid)
    result = writer.result(jid)
    expected = sample("expired.json")
    msg = expected["msg"].replace("for 30 s", "for 1 s").split("; the last")[0] + \
        "; no status call on it came since it started"
    assert result == dict(expected, ansible_job_id=jid, child_pid=marker["module_process"]["pid"], lease=1,
                          last_call=None, msg=msg)
    assert writer.log(jid)[-1] == "result state=expired"


def test_unwritten_record_is_the_samples_shape(writer):
    # 200 kB of output under a 100 kB file size limit: the module's output and the result
    # both hit it; the short failure fits.
    jid = writer.start("printf '{\"big\": \"'; head -c 200000 /dev/zero | tr '\\0' a; printf '\"}\\n'", 30,
                       limit_fsize=100000)
    result = writer.result(jid)
    assert shape(result) == shape(sample("unwritten.json"))
    assert result["msg"] == f"could not write the module's result: {writer.async_dir / jid}: File too large (os error 27)"
    assert writer.log(jid)[-1] == f"result not written error={writer.async_dir / jid}: File too large (os error 27)"


def test_both_writers_log_the_same_events(libraries, tmp_path):
    """The job log of each way a job ends, line for line, but for times, pids and paths (and
    the fallback's own line saying why it ran)."""
    logs = {}
    for kind in ("native", "fallback"):
        writer = Writer(kind, libraries[kind], tmp_path / kind)
        writer.tmp.mkdir()
        try:
            jids = [writer.start("echo '{\"rc\": 0}'", 30),
                    writer.start("echo oops; kill -9 $$", 0),
                    writer.start("exec sleep 60", 1, env={"ASYNC_WRAPPER_EXACT_LIMIT": "1"}),
                    writer.start("exec sleep 60", 30, env={"ASYNC_WRAPPER_LEASE": "1"}),
                    writer.start("exec sleep 60", 30)]
            os.kill(writer.running(jids[-1])["supervisor"]["pid"], signal.SIGUSR1)
            for jid in jids:
                writer.result(jid)
            logs[kind] = [[re.sub(r"(pid|grace)=[0-9.]+", r"\1=N", line).replace(str(writer.tmp), "TMP")
                           for line in writer.log(jid) if not line.startswith("fallback ")] for jid in jids]
        finally:
            kill_jobs(writer.async_dir)
    assert logs["fallback"] == logs["native"]
    assert [log[-1] for log in logs["native"]] == [f"result state={s}" for s in
                                                   ("finished", "failed", "timed_out", "expired", "terminated")]
