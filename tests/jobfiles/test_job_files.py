"""The sample job files in tests/jobfiles/samples against the two writers: the native program
(library/async_wrapper) and the portable fallback (tests/foreign/fallback-library.sh) write each
record with the sample's keys and value types. The record types and the Rust readers are tested
against the same files in crates/async-core and crates/async-status, the async_status script's
own answers in tests/launcher.

Needs `make build`.
"""

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from harness.jobs import kill_jobs, wait_finished, wait_running
from harness.paths import LIBRARY, TESTS

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples"


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


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    fallback = tmp_path_factory.mktemp("fallback-library")
    subprocess.run(["sh", str(TESTS / "foreign" / "fallback-library.sh"), str(fallback)], check=True)
    return {"native": LIBRARY, "fallback": fallback}


class Writer:
    """One wrapper (native or fallback) starting jobs as ansible does, in a private async dir."""

    def __init__(self, kind, library, tmp):
        self.kind, self.library, self.tmp = kind, library, tmp
        self.async_dir = tmp / "async"
        self.env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "ANSIBLE_ASYNC_DIR": str(self.async_dir)}
        self.modules = 0

    def start(self, body, limit, env=None):
        self.modules += 1
        module = self.tmp / "ansible-tmp-1-2-3" / f"m{self.modules}"
        module.parent.mkdir(exist_ok=True)
        module.write_text("#!/bin/sh\n" + body)
        module.chmod(0o755)
        run = subprocess.run(["/bin/sh", str(self.library / "async_wrapper"), "j1", str(limit), str(module), "_"],
                             env=dict(self.env, **(env or {})), capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        return json.loads(run.stdout)["ansible_job_id"]

    def running(self, jid):
        return wait_running(self.async_dir, jid, timeout=30)

    def result(self, jid):
        return wait_finished(self.async_dir, jid, timeout=30)


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
