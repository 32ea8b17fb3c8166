"""The sample job files in tests/jobfiles/samples, one of every kind, against every writer and
reader outside Rust (the Rust reader and record types are tested against the same files in
crates/async-core and crates/async-status):

- both writers, the native program (library/async_wrapper) and the portable fallback
  (tests/foreign/fallback-library.sh), write each record with the sample's keys and value types;
- the async_status script's own answer (no program on the host) is the program's, as
  expected.json says.

Needs `make build`.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SAMPLES = HERE / "samples"
EXPECTED = json.loads((HERE / "expected.json").read_text())
PROGRAM = REPO / "target" / "programs" / "ansible-async.x86_64"
MARKER = "<<INCLUDE_ANSIBLE_MODULE_" + "JSON_ARGS>>"
JID = "j123456789012.4242"


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


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
    subprocess.run(["sh", str(REPO / "tests" / "foreign" / "fallback-library.sh"), str(fallback)], check=True)
    return {"native": REPO / "library", "fallback": fallback}


class Writer:
    """One wrapper (native or fallback) starting jobs as ansible does, in a private async dir."""

    def __init__(self, library, tmp):
        self.library, self.tmp = library, tmp
        self.async_dir = tmp / "async"
        self.env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "ANSIBLE_ASYNC_DIR": str(self.async_dir)}
        self.supervisors = []

    def start(self, body, limit):
        module = self.tmp / "ansible-tmp-1-2-3" / f"m{len(self.supervisors)}"
        module.parent.mkdir(exist_ok=True)
        module.write_text("#!/bin/sh\n" + body)
        module.chmod(0o755)
        run = subprocess.run(["/bin/sh", str(self.library / "async_wrapper"), "j1", str(limit), str(module), "_"],
                             env=self.env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        return json.loads(run.stdout)["ansible_job_id"]

    def job(self, jid):
        return json.loads((self.async_dir / jid).read_text())

    def running(self, jid):
        job = wait_until(lambda: "module_process" in self.job(jid) and self.job(jid), 30,
                         f"job {jid} to record its module")
        self.supervisors.append(job["supervisor"]["pid"])
        return job

    def result(self, jid):
        return wait_until(lambda: "started" not in self.job(jid) and self.job(jid), 30, f"job {jid} to end")

    def end_all(self):
        for pid in self.supervisors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(params=["native", "fallback"])
def writer(request, libraries, tmp_path):
    w = Writer(libraries[request.param], tmp_path)
    w.kind = request.param
    yield w
    w.end_all()


def test_running_and_terminated_records_have_the_samples_shape(writer):
    jid = writer.start("exec sleep 60", 120)
    marker = writer.running(jid)
    expected = shape(sample("running.json"))
    if writer.kind == "fallback":
        assert marker.pop("wrapper") == "fallback", "the fallback says who wrote the file"
    assert shape(marker) == expected
    assert (marker["ansible_job_id"], marker["time_limit"], marker["kill_grace"]) == (jid, 120, 2)
    os.kill(marker["supervisor"]["pid"], signal.SIGUSR1)  # what async_job terminate sends
    result = writer.result(jid)
    assert shape(result) == shape(sample("terminated.json"))
    assert result["msg"] == sample("terminated.json")["msg"]
    assert result["child_pid"] == marker["module_process"]["pid"]


def test_timed_out_record_is_the_sample_but_for_the_pid(writer):
    jid = writer.start("exec sleep 60", 1)
    marker = writer.running(jid)
    result = writer.result(jid)
    assert result == dict(sample("timed-out.json"), child_pid=marker["module_process"]["pid"])


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


def status_args(async_dir):
    return json.dumps({"jid": JID, "mode": "status", "_async_dir": str(async_dir)})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_async_status_script_reads_every_sample_as_the_program_does(tmp_path, libraries, name):
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    (async_dir / JID).write_bytes((SAMPLES / name).read_bytes())
    args = status_args(async_dir)
    native = subprocess.run([str(PROGRAM), "async_status", "--args-json", args], capture_output=True, text=True)
    program = json.loads(native.stdout)
    expect = EXPECTED[name]
    assert native.returncode == expect["code"]
    assert {key: program.get(key) for key in expect["status"]} == expect["status"]
    # The script without a program on the host: the launcher library's async_status finds no
    # cached program in this async dir and answers by itself.
    module = tmp_path / "AnsiballZ_async_status"
    module.write_text((REPO / "library" / "async_status").read_text().replace(MARKER, args))
    run = subprocess.run(["/bin/sh", str(module)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert run.stderr == ""
    script = json.loads(run.stdout)
    if "script" in expect:
        # Where the script cannot tell what the program can (a lost job): what it says instead.
        assert {key: script.get(key) for key in expect["script"]} == expect["script"]
    else:
        assert (run.returncode, script) == (native.returncode, program)
