"""Every implementation of the three modules answers the command lines and arguments of
arguments.json as the native program does: the same `failed`, `finished`, `msg` (and
`started` where the reply has it) and exit code.

- async_wrapper: "program" (ansible-async async_wrapper, the reference), "native"
  (library/async_wrapper as built: the launcher, then the program) and "fallback" (a library
  whose wrapper runs only the portable fallback, tests/conftest.py's `libraries`).
- async_status: "program" (ansible-async async_status --args-json), library/async_status with
  the program cached in the async dir ("cached-file", "cached-pipelined") and without it, the
  script's own answer ("script-file", "script-pipelined"), run as ansible runs a JSON-args
  module: by file, or fed to /bin/sh on stdin.
- async_job: "program" and library/async_job with the program cached.

Each case runs in its own tmp dirs, its working dir too: HOME and ANSIBLE_ASYNC_DIR are tmp
paths, and so is every async dir the arguments name, so no program cached in the real home is
ever found and no real job dir is touched.
Where an implementation is known to answer otherwise today, KNOWN_DIFFERENCES says so (a
strict xfail): the table holds only the reference answers. The native program's Rust tests read
the async_wrapper and async_status cases of the same table (crates/async-wrapper/tests/wrapper/
arguments.rs, crates/async-status/tests/arguments.rs). Needs `make build`; about 30 s.
"""

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from harness import procs
from harness.arches import HOST_ARCH
from harness.jobs import kill_jobs, read_job
from harness.paths import LIBRARY, PROGRAMS
from harness.wait import wait_until

TABLE = json.loads((Path(__file__).resolve().parent / "arguments.json").read_text())
PROGRAM = PROGRAMS / f"ansible-async.{HOST_ARCH}"
MARKER = "<<INCLUDE_ANSIBLE_MODULE_" + "JSON_ARGS>>"

WRAPPERS = ["program", "native", "fallback"]
STATUSES = ["program", "cached-file", "cached-pipelined", "script-file", "script-pipelined"]
JOBS = ["program", "cached-file", "cached-pipelined"]

# (implementation, case id): how that implementation answers otherwise, when one does (a
# strict xfail). Empty: every implementation gives every answer of the table.
KNOWN_DIFFERENCES: dict = {
    (impl, case): "the status script's Python answer takes the wait arguments unchecked (it never waits; "
                  "a check does not fit in the script's 4096 bytes)"
    for impl in ("script-file", "script-pipelined")
    for case in ("wait-text", "wait-true", "wait-reserve-negative")
}


def params(section, implementations):
    found = []
    for case in TABLE[section]:
        for impl in implementations:
            marks = []
            if (impl, case["id"]) in KNOWN_DIFFERENCES:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[(impl, case["id"])]))
            if case.get("root") and os.geteuid() != 0:
                marks.append(pytest.mark.skip(reason="only root can make a dir another user owns"))
            found.append(pytest.param(impl, case, id=f"{impl}-{case['id']}", marks=marks))
    return found


def test_every_known_difference_names_a_case():
    cases = {(impl, case["id"]) for section, impls in (("async_wrapper", WRAPPERS), ("async_status", STATUSES),
                                                       ("async_job", JOBS))
             for case in TABLE[section] for impl in impls}
    assert set(KNOWN_DIFFERENCES) <= cases, set(KNOWN_DIFFERENCES) - cases
    for section in ("async_wrapper", "async_status", "async_job"):
        ids = [case["id"] for case in TABLE[section]]
        assert len(ids) == len(set(ids)), f"{section}: a case id is used twice"


# --- the sandbox of one case ----------------------------------------------------------------

class Sandbox:
    """tmp_path as one case's host: a HOME of its own, the async dir `tmp/async` made as the
    case says (else as `kind`), a module that sleeps, and the values the table's placeholders
    stand for."""

    def __init__(self, tmp_path, case, kind):
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        module_dir = tmp_path / "ansible-tmp-1-2-3"
        module_dir.mkdir()
        self.module = module_dir / "module"
        self.module.write_text("#!/bin/sh\nexec sleep 60\n")
        self.module.chmod(0o755)
        self.args_file = module_dir / "args"
        self.args_file.write_text("{}")
        for name, content in case.get("files", {}).items():
            (tmp_path / name).write_text(content)
        self.values = {"{tmp}": str(tmp_path), "{module}": str(self.module), "{args_file}": str(self.args_file),
                       "{uid}": str(os.geteuid())}
        setting = case.get("async_dir_setting")
        self.async_dir = Path(self.subst(setting)) if setting else tmp_path / "async"
        # Where the job files are: the dir itself, or what a symlink points to.
        self.job_dir = self.make_dir(case.get("async_dir", kind))
        self.values["{async_dir}"] = str(self.async_dir)

    def make_dir(self, kind):
        path = self.async_dir
        if kind == "missing":
            return self.tmp / path if not path.is_absolute() else path
        if kind == "file":
            path.write_text("x")
            return None
        if kind == "symlink":
            real = self.tmp / "real"
            real.mkdir(mode=0o700)
            path.symlink_to(real)
            return real
        path.mkdir(mode=0o700)
        if kind == "world-writable":
            path.chmod(0o777)
        elif kind == "other-user":
            self.nobody = pwd.getpwnam("nobody").pw_uid
            self.values["{nobody}"] = str(self.nobody)
        else:
            assert kind == "private", kind
        return path

    def give_away(self):
        """For an "other-user" dir: to nobody, once the case has put its files in it."""
        if hasattr(self, "nobody"):
            os.chown(self.job_dir, self.nobody, -1)

    def subst(self, value):
        if isinstance(value, str):
            for placeholder, text in self.values.items():
                value = value.replace(placeholder, text)
            return value
        if isinstance(value, list):
            return [self.subst(v) for v in value]
        if isinstance(value, dict):
            return {self.subst(k): self.subst(v) for k, v in value.items()}
        return value

    def env(self):
        return {"PATH": os.environ["PATH"], "HOME": str(self.home), "ANSIBLE_ASYNC_DIR": str(self.async_dir)}

    def cache_program(self, payload):
        """The copy async_wrapper leaves on the host, in the async dir's .bin, where the dir
        can hold one (it is a dir, or a symlink to one)."""
        if self.job_dir is None or not self.job_dir.is_dir():
            return
        bin_dir = self.job_dir / ".bin"
        bin_dir.mkdir(mode=0o700)
        target = bin_dir / f"ansible-async-{payload}.{HOST_ARCH}"
        shutil.copyfile(PROGRAM, target)
        target.chmod(0o700)


def assert_reply(sandbox, code, reply, expect, keys=("failed", "started", "finished", "msg")):
    """The reply's `keys` (absent ones too) and the exit code as `expect` says; `{pid}` in an
    expected text stands for any process id."""
    expect = sandbox.subst(expect)

    def same(key):
        want, got = expect.get(key), reply.get(key)
        if key == "msg" and isinstance(want, str) and isinstance(got, str):
            # An OS error is its number: the words are the C library's (musl's in the program,
            # glibc's in Python here).
            want, got = (re.sub(r": [^:()]+ \(os error (\d+)\)", r": (os error \1)", text) for text in (want, got))
        if isinstance(want, str) and "{pid}" in want and isinstance(got, str):
            return re.fullmatch(re.escape(want).replace(re.escape("{pid}"), "[0-9]+"), got) is not None
        return json.dumps(want) == json.dumps(got)  # true is not 1

    checked = [*keys, *(key for key in expect if key not in keys and key != "code")]
    wrong = {key: (expect.get(key), reply.get(key)) for key in checked if not same(key)}
    assert (code, wrong) == (expect["code"], {}), f"expected {expect}, got {code}: {reply}"


# --- async_wrapper --------------------------------------------------------------------------

@pytest.mark.parametrize("impl,case", params("async_wrapper", WRAPPERS))
def test_async_wrapper(libraries, tmp_path, impl, case):
    sandbox = Sandbox(tmp_path, case, "missing")
    sandbox.give_away()
    command = {"program": [str(PROGRAM), "async_wrapper"],
               "native": ["/bin/sh", str(libraries["native"] / "async_wrapper")],
               "fallback": ["/bin/sh", str(libraries["fallback"] / "async_wrapper")]}[impl]
    run = subprocess.run(command + sandbox.subst(case["args"]), env=sandbox.env(), cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    job_dir = sandbox.job_dir
    try:
        reply = json.loads(run.stdout)
        assert_reply(sandbox, run.returncode, reply, case["expect"])
        if run.returncode != 0 and job_dir is not None and job_dir.is_dir():
            assert not [p for p in job_dir.iterdir() if not p.name.startswith(".")], "a refused job left files"
    finally:
        end_job(job_dir, run)


def end_job(job_dir, run):
    """Ends the job a wrapper started (as async_job terminate does), and whatever is left."""
    if job_dir is None or not job_dir.is_dir():
        return
    try:
        jid = json.loads(run.stdout).get("ansible_job_id") if run.returncode == 0 else None
        if jid:
            # Running its module, or already over (a module that could not start).
            def running_or_over():
                job = read_job(job_dir, jid)
                return job if "module_process" in job or "started" not in job else None

            marker = wait_until(running_or_over, timeout=30, what=f"job {jid} to run its module or end")
            supervisor = marker.get("supervisor", {}).get("pid")
            if "started" in marker and supervisor and procs.is_alive(supervisor):
                os.kill(supervisor, signal.SIGUSR1)
                # Unless its supervisor is gone: then kill_jobs ends the module.
                wait_until(lambda: "started" not in read_job(job_dir, jid) or not procs.is_alive(supervisor),
                           timeout=30, what=f"job {jid} to end")
    finally:
        kill_jobs(job_dir)


# --- async_status ---------------------------------------------------------------------------

def release_id() -> str:
    """The release id the scripts look for first: the one library/async_wrapper carries."""
    return re.search(rb"\brelease_id=([0-9a-f]{16})\b", (LIBRARY / "async_wrapper").read_bytes()[:16384]).group(1).decode()


def ansible_args(args):
    """The arguments as ansible writes them into the module: the task's, and ansible's own."""
    return {**args, "_ansible_check_mode": False, "_ansible_no_log": False, "_ansible_verbosity": 0,
            "_ansible_version": "2.19.14", "_ansible_selinux_special_fs": ["fuse", "nfs", "9p"],
            "_ansible_socket": None, "_ansible_tmpdir": None, "_ansible_tracebacks_for": []}


def run_module(sandbox, impl, name, text):
    """Runs module `name` with the arguments `text` as implementation `impl`: the program, or
    library/<name> as ansible runs it (by file, or fed to /bin/sh)."""
    env, cwd = sandbox.env(), sandbox.tmp
    if impl == "program":
        done = subprocess.run([str(PROGRAM), name, "--args-json", text], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=30)
    else:
        source = (LIBRARY / name).read_text()
        assert source.count(MARKER) == 1
        module = source.replace(MARKER, text)
        if impl.endswith("-file"):
            path = sandbox.tmp / f"AnsiballZ_{name}"
            path.write_text(module)
            done = subprocess.run(["/bin/sh", str(path)], stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                  capture_output=True, text=True, timeout=30)
        else:
            done = subprocess.run(["/bin/sh"], input=module, env=env, cwd=cwd, capture_output=True, text=True,
                                  timeout=30)
    return done.returncode, json.loads(done.stdout)


def arguments_text(sandbox, case):
    if "text" in case:
        return case["text"]
    return json.dumps(ansible_args(sandbox.subst(case["args"])))


@pytest.mark.parametrize("impl,case", params("async_status", STATUSES))
def test_async_status(tmp_path, impl, case):
    sandbox = Sandbox(tmp_path, case, "private")
    job = None
    if sandbox.job_dir is not None and ("job" in case or "job_symlink" in case):
        job = sandbox.job_dir / case.get("job_name", "j1.1")
        if "job_symlink" in case:
            (tmp_path / "elsewhere").write_text(case["job_symlink"])
            job.symlink_to(tmp_path / "elsewhere")
        else:
            job.write_text(case["job"])
    if impl.startswith("cached"):
        sandbox.cache_program(release_id())
    sandbox.give_away()
    code, reply = run_module(sandbox, impl, "async_status", arguments_text(sandbox, case))
    assert_reply(sandbox, code, reply, case["expect"])
    if job is not None:
        # Only a cleanup that succeeds removes the job file.
        gone = code == 0 and case.get("args", {}).get("mode") == "cleanup"
        assert os.path.lexists(job) != gone, f"the job file is {'still there' if gone else 'gone'}"
    if (tmp_path / "x").exists():
        assert (tmp_path / "x").read_text() == "{}", "a file outside the async dir was touched"


# --- async_job ------------------------------------------------------------------------------

@pytest.mark.parametrize("impl,case", params("async_job", JOBS))
def test_async_job(tmp_path, impl, case):
    sandbox = Sandbox(tmp_path, case, "private")
    (sandbox.job_dir / "j2.2").write_text('{"rc": 0}')
    (tmp_path / "link").symlink_to(sandbox.job_dir)
    (tmp_path / "x").write_text("{}")
    if impl.startswith("cached"):
        sandbox.cache_program(release_id())
    code, reply = run_module(sandbox, impl, "async_job", arguments_text(sandbox, case))
    assert_reply(sandbox, code, reply, case["expect"])
    assert read_job(sandbox.job_dir, "j2.2") == {"rc": 0}, "a job's file was changed"
    assert (tmp_path / "x").read_text() == "{}", "a file outside the async dir was touched"
