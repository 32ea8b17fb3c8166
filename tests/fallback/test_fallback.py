"""The portable async_wrapper fallback (crates/ansible-async/library/fallback), run on this
machine as a host where no native program runs would run it: a launcher that can only take
the fallback (tests/harness/fallback-library.sh). Its job files must read back through the
native async_status and async_job, and through the async_status script's own answers.

Needs `make build` (the native program, to read the fallback's jobs) and a controller venv
(ansible's own classification of the launcher file).
"""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import uuid
import zlib
from pathlib import Path

import pytest
from ansible.executor import module_common

from harness.arches import HOST_ARCH
from harness.jobs import read_job, wait_finished, wait_running
from harness.paths import PROGRAMS, REPO
from harness.procs import is_alive, kill_all, processes_matching, stat_field
from harness.wait import poll_until, wait_until

HERE = Path(__file__).resolve().parent
PROGRAM = PROGRAMS / f"ansible-async.{HOST_ARCH}"  # the native program make build ships


@pytest.fixture(scope="module")
def library(libraries):
    return libraries["fallback"]


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    """The native program under its own name, which answers to all three commands."""
    path = tmp_path_factory.mktemp("native") / "ansible-async"
    shutil.copy(PROGRAM, path)
    return path


@pytest.fixture
def host(tmp_path, library, program):
    yield Host(tmp_path, library, program)
    # A failed test may leave a job running (some have no time limit): end every process
    # whose command line names this test's folder (its supervisors and modules).
    kill_all(pid for pid, _ in processes_matching(str(tmp_path)))


class Host:
    """Runs the fallback launcher as ansible does, with a private async dir."""

    def __init__(self, tmp: Path, library: Path, program: Path):
        self.tmp = tmp
        self.library = library
        self.program = program
        self.async_dir = tmp / "async"
        self.env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
                    "ANSIBLE_ASYNC_DIR": str(self.async_dir)}

    def module(self, name: str, body: str, shebang="#!/bin/sh", folder="ansible-tmp-1-2-3") -> Path:
        path = self.tmp / folder / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"{shebang}\n{body}")
        path.chmod(0o755)
        return path

    def wrapper(self, *args, env=None, shell="/bin/sh"):
        run = subprocess.run([shell, str(self.library / "async_wrapper"), *map(str, args)],
                             env=dict(self.env, **(env or {})), capture_output=True, text=True, timeout=30)
        assert run.stderr == "", run.stderr
        return run.returncode, json.loads(run.stdout)

    def job(self, jid: str) -> dict:
        return read_job(self.async_dir, jid)

    def log(self, jid: str) -> str:
        return (self.async_dir / f"{jid}.log").read_text()

    def finished(self, jid: str, timeout=15.0) -> dict:
        return wait_finished(self.async_dir, jid, timeout=timeout)

    def running(self, jid: str) -> dict:
        return wait_running(self.async_dir, jid, timeout=10)

    def native(self, *args) -> dict:
        run = subprocess.run([str(self.program), "async_job", "--json", "--async-dir", str(self.async_dir), *args],
                             capture_output=True, text=True, timeout=30)
        return json.loads(run.stdout)

    def native_status(self, jid: str) -> dict:
        args = self.tmp / "status-args"
        args.write_text(json.dumps({"jid": jid, "mode": "status", "_async_dir": str(self.async_dir)}))
        run = subprocess.run([str(self.program), "async_status", str(args)], capture_output=True, text=True)
        return json.loads(run.stdout)

    def script_status(self, jid: str) -> dict:
        """library/async_status as ansible runs it: the arguments written into its text."""
        args = json.dumps({"jid": jid, "mode": "status", "_async_dir": str(self.async_dir)})
        marker = "<<INCLUDE_ANSIBLE_MODULE_" + "JSON_ARGS>>"
        module = self.tmp / "AnsiballZ_async_status"
        module.write_text((self.library / "async_status").read_text().replace(marker, args))
        run = subprocess.run(["/bin/sh", str(module)], stdin=subprocess.DEVNULL,
                             env=self.env, capture_output=True, text=True)
        return json.loads(run.stdout)


JSON_MODULE = """\
echo 'a banner line'
echo '{"changed": true, "argv": "'"$*"'", "warnings": ["own"]}'
echo 'trailing junk'
echo 'to stderr' >&2
"""


def test_ansible_sees_an_old_style_sh_script(library):
    data = (library / "async_wrapper").read_bytes()
    assert data.startswith(b"#!/bin/sh\n")
    assert not module_common._is_binary(data)
    for marker in (module_common.REPLACER, module_common.REPLACER_JSONARGS, module_common.REPLACER_WINDOWS,
                   b"WANT_JSON", b"@FALLBACK", b"@COMMON@"):
        assert marker not in data
    assert module_common.NEW_STYLE_PYTHON_MODULE_RE.search(data) is None


def test_the_embedded_program_compiles():
    """The fallback as library/async_wrapper carries it (assemble.sh joins the rules,
    fallback/common.py and fallback/async_wrapper.py, packs them and deflates them to the
    file's end, the size written into the launcher): it inflates and compiles."""
    data = (REPO / "library" / "async_wrapper").read_bytes()
    size = int(re.search(rb"f\.seek\(-([0-9]+), 2\)", data).group(1))
    program = zlib.decompress(data[-size:], -15).decode()
    compile(program, "async_wrapper.py", "exec")
    # The rules come first, renamed _1, _2, ... by pack.awk.
    assert re.search(r'^_[0-9]+="Timeout exceeded"$', program.split("\ndef ")[0], re.M), "the rules come first"


def test_a_python_without_json_fails_naming_the_missing_module(host):
    """Debian's python3-minimal has no json: a failed reply, not a traceback, and no job."""
    shadow = host.tmp / "shadow" / "json"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'json'\")\n")
    module = host.module("m", "echo '{}'\n")
    run = subprocess.run(["/bin/sh", str(host.library / "async_wrapper"), "j30", "5", str(module), "_"],
                         env={**host.env, "PYTHONPATH": str(shadow.parent)}, capture_output=True, text=True,
                         timeout=30)
    assert (run.returncode, run.stderr) == (1, "")
    reply = json.loads(run.stdout)
    assert reply["failed"] is True and reply["msg"].startswith("async_wrapper: ")
    assert reply["msg"].endswith(": No module named 'json' (install python3)")
    assert not host.async_dir.exists() or not list(host.async_dir.iterdir())


def test_legacy_job_result_files_and_log(host):
    module = host.module("AnsiballZ_m.py", JSON_MODULE)
    args = module.parent / "args"
    args.write_text("{}")
    code, reply = host.wrapper("j11", 30, module, args)
    assert code == 0
    jid = reply["ansible_job_id"]
    assert jid.startswith("j11.") and jid.split(".")[1].isdigit()
    assert reply == {"failed": False, "started": True, "finished": False, "ansible_job_id": jid,
                     "results_file": str(host.async_dir / jid), "_ansible_suppress_tmpdir_delete": True}
    assert (host.async_dir / jid).exists(), "the job file exists when ansible gets the reply"
    result = host.finished(jid)
    assert result == {"changed": True, "argv": str(args), "stderr": "to stderr\n",
                      "warnings": ["own", "Module invocation had junk after the JSON data: trailing junk"]}
    assert stat.S_IMODE(host.async_dir.stat().st_mode) == 0o700
    for path in host.async_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert sorted(p.name for p in host.async_dir.iterdir()) == [jid, f"{jid}.log"], "no leftover temp files"
    assert not module.parent.exists(), "ansible's tmp dir is removed when not preserved"
    events = [line.split(" ", 2)[1] for line in host.log(jid).splitlines()]
    assert events == ["invoked", "fallback", "started", "exited", "tmp_removed", "result"]
    assert f"invoked protocol=legacy time_limit=30 grace=2 deadline=31 limit_rule=stock-halving module={module}" in host.log(jid)
    assert "result state=finished" in host.log(jid)
    assert "fallback python=3." in host.log(jid)


def test_the_launchers_reason_goes_to_the_log_not_to_the_module(host, tmp_path):
    launcher = tmp_path / "launcher"
    data = (host.library / "async_wrapper").read_bytes()
    launcher.write_bytes(data.replace(b'\nrun_fallback "$@"',
                                      b'\nnative_why="no native program for this host (Linux armv7l)"\nrun_fallback "$@"'))
    module = host.module("m", "echo \"{\\\"reason\\\": \\\"${ASYNC_WRAPPER_FALLBACK_REASON-unset}\\\"}\"\n")
    run = subprocess.run(["/bin/sh", str(launcher), "j21", "5", str(module), "_"], env=host.env,
                         capture_output=True, text=True, timeout=30)
    jid = json.loads(run.stdout)["ansible_job_id"]
    assert host.finished(jid) == {"reason": "unset"}
    assert "reason=no native program for this host (Linux armv7l)\n" in host.log(jid)


def test_runs_with_the_modules_python_and_detaches(host):
    module = host.module("m.py", "import time; time.sleep(30)\n", shebang="#!/usr/bin/python3")
    code, reply = host.wrapper("j12", 0, "true", module, "/usr/bin/python3", module)
    assert code == 0 and reply["_ansible_suppress_tmpdir_delete"] is False
    jid = reply["ansible_job_id"]
    running = host.running(jid)
    assert running["started"] is True and running["finished"] is False
    assert running["time_limit"] == 0 and running["module"] == str(module) and running["wrapper"] == "fallback"
    supervisor, child = running["supervisor"]["pid"], running["module_process"]["pid"]
    try:
        assert os.path.realpath(f"/proc/{supervisor}/exe").startswith("/usr/bin/python3")
        assert stat_field(supervisor, 4) == "1" or stat_field(supervisor, 4) != str(os.getpid())
        assert stat_field(supervisor, 6) != stat_field(os.getpid(), 6), "a session of its own"
        assert stat_field(child, 5) == str(child), "the module leads a process group of its own"
        assert os.readlink(f"/proc/{child}/fd/0") == "/dev/null"
        for fd in (1, 2):
            target = os.readlink(f"/proc/{child}/fd/{fd}")
            assert target.startswith(str(host.async_dir)) and target.endswith("(deleted)"), target
        # No other fd of the wrapper's: a leaked one stays, the module's own Python opens and
        # closes its script while it starts.
        poll_until(lambda: sorted(os.listdir(f"/proc/{child}/fd")) == ["0", "1", "2"], timeout=10)
        assert sorted(os.listdir(f"/proc/{child}/fd")) == ["0", "1", "2"]
        # Every reader understands the running file.
        assert host.native_status(jid)["finished"] is False
        assert host.script_status(jid)["finished"] is False
        listed = {job["jid"]: job for job in host.native("list")["jobs"]}
        assert listed[jid]["state"] == "running" and listed[jid]["time_limit"] == 0
    finally:
        os.kill(child, signal.SIGKILL)
    result = host.finished(jid)
    assert result["failed"] is True
    assert result["msg"] == ("The module did not return a JSON result: No start of json char found"
                             " (it was killed by signal 9, SIGKILL)")
    assert "killed signal=SIGKILL" in host.log(jid)
    assert module.exists(), "tmp preserved when ansible says so"


def test_time_limit_ends_the_whole_group(host):
    # ansible-core 2.21.5's arguments (in the module, as AnsiballZ has them): its halving watchdog.
    module = host.module("m", "# _ansible_version=2.21.5\nsleep 60 &\nsleep 60\n")
    code, reply = host.wrapper("j13", 1, "false", module, module)
    jid = reply["ansible_job_id"]
    running = host.running(jid)
    group = running["module_process"]["pid"]
    result = host.finished(jid)
    # Ended when stock's file would say so, 1 s after a limit of 1 s: the deadline it chose
    # (when it ended is the conformance table's to hold, tests/protocol/deadlines.json).
    assert running["deadline"] == 2
    assert result.pop("elapsed") >= 2.0
    assert result == {"failed": True, "msg": "Timeout exceeded", "child_pid": group, "time_limit": 1}
    assert subprocess.run(["pgrep", "-g", str(group)], capture_output=True).stdout == b""
    log = host.log(jid)
    assert "timeout time_limit=1 limit_rule=stock-halving" in log and "ended signal=SIGTERM" in log and "result state=timed_out" in log
    assert host.native("show", jid)["state"] == "timed_out"


def test_async_job_terminate_with_grace_then_sigkill(host):
    module = host.module("m", "trap '' TERM\nwhile :; do sleep 1; done\n")
    code, reply = host.wrapper("j14", 0, module, "_", env={"ASYNC_WRAPPER_KILL_GRACE": "0.3"})
    jid = reply["ansible_job_id"]
    running = host.running(jid)
    assert "grace=0.3" in host.log(jid)
    answer = host.native("terminate", jid)
    assert answer.get("failed") is not True, answer
    result = host.finished(jid)
    assert result["terminated"] is True and result["failed"] is True
    assert result["msg"] == "the job was terminated on request (async_job terminate) before its module finished"
    assert result["child_pid"] == running["module_process"]["pid"]
    assert not is_alive(result["child_pid"])
    assert "terminate requested" in host.log(jid) and "ended signal=SIGKILL" in host.log(jid)
    assert host.script_status(jid)["terminated"] is True


def test_a_lost_supervisor_is_seen_by_the_native_tools(host):
    module = host.module("m", "exec sleep 60\n")
    code, reply = host.wrapper("j15", 0, module, "_")
    jid = reply["ansible_job_id"]
    running = host.running(jid)
    os.kill(running["supervisor"]["pid"], signal.SIGKILL)
    try:
        wait_until(lambda: not is_alive(running["supervisor"]["pid"]), timeout=10, what="the supervisor to die")
        status = host.native_status(jid)
        assert status["finished"] is True and status["failed"] is True
        assert "lost" in status["msg"]
        assert host.native("show", jid)["state"] == "lost"
    finally:
        os.kill(running["module_process"]["pid"], signal.SIGKILL)


def test_time_limit_zero_is_no_limit(host):
    # Stock lets such a module run about 5 s; ours and the native program impose nothing.
    module = host.module("m", "sleep 6\necho '{\"slept\": 6}'\n")
    code, reply = host.wrapper("j16", 0, module, "_")
    assert host.finished(reply["ansible_job_id"], timeout=20) == {"slept": 6}


def test_module_that_cannot_run_or_prints_no_json(host):
    code, reply = host.wrapper("j17", 5, "false", host.tmp / "m", host.tmp / "no-such-interpreter")
    assert code == 0
    result = host.finished(reply["ansible_job_id"])
    assert result["failed"] is True
    assert result["msg"] == f"[Errno 2] No such file or directory: '{host.tmp / 'no-such-interpreter'}'"
    assert result["cmd"] == str(host.tmp / "no-such-interpreter")
    module = host.module("m", "echo not json\necho oops >&2\nexit 3\n")
    code, reply = host.wrapper("j18", 5, module, "_")
    result = host.finished(reply["ansible_job_id"])
    assert result == {"failed": True, "cmd": str(module), "ansible_job_id": reply["ansible_job_id"],
                      "msg": "The module did not return a JSON result: No start of json char found"
                             " (it exited with status 3)",
                      "data": "not json\n", "stderr": "oops\n"}


@pytest.mark.parametrize("args, env, msg", [
    (["j1", "5", "/m"], {}, "usage: async_wrapper <jid>"),
    (["j1", "soon", "/m", "_"], {}, 'the time limit must be a whole number of seconds from 0 (no limit) to 315576000 (10 years), got: "soon"'),
    (["../x", "5", "/m", "_"], {}, "invalid job id \"../x."),
    (["j1", "5", "/m", "_"], {"ASYNC_WRAPPER_KILL_GRACE": "later"},
     'ASYNC_WRAPPER_KILL_GRACE must be a number of seconds from 0 to 3600, got: "later"'),
    (["j1", "5", "/m", "_"], {"ANSIBLE_ASYNC_DIR": "/proc/version/x"}, "could not create directory: /proc/version/x - "),
])
def test_bad_input_is_a_failed_json_reply(host, args, env, msg):
    code, reply = host.wrapper(*args, env=env)
    assert code == 1 and reply["failed"] is True
    assert reply["msg"].startswith(msg), reply["msg"]
    assert not host.async_dir.exists() or not any(host.async_dir.iterdir())


def test_refuses_a_symlinked_async_dir(host):
    real = host.tmp / "real"
    real.mkdir(mode=0o700)
    host.async_dir.symlink_to(real)
    code, reply = host.wrapper("j1", 5, "/m", "_")
    assert code == 1
    assert reply["msg"] == f"refusing to use async directory {host.async_dir}: it is a symbolic link"


def test_async_dir_home_is_the_passwd_home(host):
    # `~` and `$HOME` are the effective user's passwd home, not whatever HOME says.
    import pwd
    home = pwd.getpwuid(os.geteuid()).pw_dir
    name = f".async-fallback-test-{uuid.uuid4().hex[:8]}"
    module = host.module("m", "echo '{}'\n")
    for setting in (f"~/{name}", f"$HOME/{name}", f"${{HOME}}/{name}"):
        try:
            code, reply = host.wrapper("j19", 5, module, "_", env={"ANSIBLE_ASYNC_DIR": setting,
                                                                   "HOME": str(host.tmp)})
            assert code == 0, reply
            assert reply["results_file"].startswith(f"{home}/{name}/"), (setting, reply)
            job = Path(reply["results_file"])
            wait_finished(job.parent, job.name, timeout=10)
        finally:
            subprocess.run(["rm", "-rf", f"{home}/{name}"], check=True)


def test_without_python_a_failed_reply_names_what_is_missing(host):
    module = host.module("m", "echo '{}'\n")
    tools = host.tmp / "bin"  # what common.sh uses, and no python
    tools.mkdir()
    for tool in ("sed", "tr", "uname"):
        (tools / tool).symlink_to(subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                                                 text=True, check=True).stdout.strip())
    run = subprocess.run(["/bin/sh", str(host.library / "async_wrapper"), "j1", "5", str(module), "_"],
                         env={"PATH": str(tools), "ANSIBLE_ASYNC_DIR": str(host.async_dir)},
                         capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr == ""
    reply = json.loads(run.stdout)
    assert reply["failed"] is True and "found no python to run its portable fallback (" in reply["msg"]
    assert reply["msg"].endswith("): install python3, or run the task without async")


@pytest.mark.parametrize("shell", ["/bin/dash", "/bin/bash", "/bin/busybox"])
def test_posix_shells(host, shell):
    if not Path(shell).exists():
        pytest.skip(f"{shell} is not installed")
    module = host.module("m", "echo '{\"ok\": 1}'\n")
    cmd = [shell, "sh"] if shell.endswith("busybox") else [shell]
    run = subprocess.run([*cmd, str(host.library / "async_wrapper"), "j20", "5", str(module), "_"],
                         env=host.env, capture_output=True, text=True, timeout=30)
    reply = json.loads(run.stdout)
    assert host.finished(reply["ansible_job_id"]) == {"ok": 1}


def pythons():
    """The interpreters to run the fallback with: the system's python3, and every Python
    pyenv has here (2.7 and 3.6 among them on this project's machines)."""
    found = ["/usr/bin/python3"] if Path("/usr/bin/python3").exists() else []
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    except OSError:
        root = ""
    if root:
        for version in sorted(Path(root, "versions").glob("*/bin/python")):
            found.append(str(version))
    return found or ["python3"]


@pytest.mark.parametrize("python", pythons(), ids=lambda p: Path(p).parts[-3] if "versions" in Path(p).parts else "system")
def test_runs_on_every_python(host, python):
    """The module's interpreter runs the fallback: a result and a time limit on each."""
    module = host.module("m.py", "import json, sys, time\ntime.sleep(float(sys.argv[1]))\n"
                                 "print(json.dumps({'version': list(sys.version_info[:2])}))\n",
                         shebang=f"#!{python}")
    code, reply = host.wrapper("j22", 5, "true", module, python, module, "0")
    result = host.finished(reply["ansible_job_id"])
    version = result["version"]
    assert f"fallback python={version[0]}.{version[1]}." in host.log(reply["ansible_job_id"])
    code, reply = host.wrapper("j23", 1, module, "30")
    assert host.finished(reply["ansible_job_id"])["msg"] == "Timeout exceeded"


def test_the_module_starts_with_no_ignored_signals(host):
    # Started as from `nohup` or a CI runner's background shell: SIGHUP, SIGINT and SIGQUIT
    # ignored, which a child inherits through exec unless someone resets them.
    def ignore():
        for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_IGN)

    module = host.module("m", "exec grep -E '^Sig(Blk|Ign)' /proc/self/status\n")
    run = subprocess.run(["/bin/sh", str(host.library / "async_wrapper"), "j15", "10", str(module), "_"],
                         env=host.env, capture_output=True, text=True, timeout=30, preexec_fn=ignore)
    jid = json.loads(run.stdout)["ansible_job_id"]
    masks = [int(line.split("\t")[1], 16) for line in host.finished(jid)["data"].splitlines()]
    assert masks[0] == 0, "blocked signals"
    assert masks[1] & 0x7FFFFFFF == 0, f"ignored signals: {masks[1]:#x}"
