"""library/async_status: runs the program async_wrapper left on the host (this release's, else
another release's for this architecture); where there is none, the host's Python answers, and its
answers must be the program's; without Python either, a failed result says what is missing.
(tests/protocol/test_arguments.py holds every implementation to one table of arguments.)

ansible runs it as a JSON-args module: it writes the arguments (json.dumps, one line) in place
of the marker, then either uploads the text and runs `/bin/sh FILE` (pipelining off) or feeds
the text to `/bin/sh` over stdin (pipelining on). Every case here runs both ways.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from harness.arches import ARCHES, HOST_ARCH
from harness.paths import LIBRARY, PROGRAMS, TESTS

STATUS = LIBRARY / "async_status"
LAUNCHER = LIBRARY / "async_wrapper"
PROGRAM = PROGRAMS / f"ansible-async.{HOST_ARCH}"
MARKER = "<<INCLUDE_ANSIBLE_MODULE_" + "JSON_ARGS>>"
WAYS = ["file", "pipelined"]


def payload_id() -> str:
    """The release id assemble.sh wrote into the script: the program it looks for first."""
    return re.search(r'cached_program "\$d" ([0-9a-f]{16}) ', STATUS.read_text()).group(1)


def module_text(args) -> str:
    """The module as ansible ships it: the arguments written in place of the marker."""
    text = STATUS.read_text()
    assert text.count(MARKER) == 1
    return text.replace(MARKER, args if isinstance(args, str) else json.dumps(args))


def ansible_args(async_dir, jid, mode="status", **extra):
    args = {"jid": jid, "mode": mode, "_async_dir": str(async_dir)}
    args.update({
        "_ansible_check_mode": False, "_ansible_no_log": False, "_ansible_verbosity": 0,
        "_ansible_version": "2.19.14", "_ansible_selinux_special_fs": ["fuse", "nfs", "9p"],
        "_ansible_socket": None, "_ansible_tmpdir": None, "_ansible_tracebacks_for": [],
    })
    args.update(extra)
    return args


def script(tmp_path, args, way, env=None, shell="/bin/sh"):
    """Runs the module text as ansible would, `way` = file (pipelining off) or pipelined."""
    text = module_text(args)
    if way == "file":
        path = tmp_path / "AnsiballZ_async_status"
        path.write_text(text)
        done = subprocess.run([shell, str(path)], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=30, cwd=tmp_path, env=env)
    else:
        done = subprocess.run([shell], input=text, capture_output=True, text=True, timeout=30,
                              cwd=tmp_path, env=env)
    assert done.stderr == "", done.stderr
    return done.returncode, json.loads(done.stdout)


def native(args, cwd=None):
    text = args if isinstance(args, str) else json.dumps(args)
    done = subprocess.run([str(PROGRAM), "async_status", "--args-json", text], capture_output=True,
                          text=True, timeout=30, cwd=cwd)
    return done.returncode, json.loads(done.stdout)


def install_program(async_dir, suffix=f".{HOST_ARCH}", release=None):
    """The copy async_wrapper leaves on the host (contract: ansible-async-<id>.<arch>)."""
    bin_dir = async_dir / ".bin"
    bin_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = bin_dir / f"ansible-async-{release or payload_id()}{suffix}"
    shutil.copyfile(PROGRAM, target)
    target.chmod(0o700)
    return target


# A job file of every kind (tests/protocol/jobfiles), and what the program answers for each.
def running_job(tmp_path):
    """An async dir with a running job j1.1 that records no supervisor (so never lost): only
    the program adds "elapsed" to its report."""
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    (async_dir / "j1.1").write_text('{"started": true, "finished": false, "ansible_job_id": "j1.1", '
                                    '"started_at": 1.0, "time_limit": 5}')
    return async_dir


JOB_FILES = TESTS / "protocol" / "jobfiles" / "samples"
EXPECTED = json.loads((TESTS / "protocol" / "jobfiles" / "expected.json").read_text())
SAMPLE_JID = "j123456789012.4242"


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fallback_answers_as_the_program_does(tmp_path, name, way):
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    (async_dir / SAMPLE_JID).write_bytes((JOB_FILES / name).read_bytes())
    args = ansible_args(async_dir, SAMPLE_JID)
    assert not (async_dir / ".bin").exists()
    code, answer = script(tmp_path, args, way)
    expected_code, expected = native(args)
    expect = EXPECTED[name]
    assert expected_code == expect["code"]
    assert {key: expected.get(key) for key in expect["status"]} == expect["status"]
    if "script" in expect:
        # What the script cannot tell without the program (a lost job): it says running.
        assert code == 0
        assert {key: answer.get(key) for key in expect["script"]} == expect["script"]
        return
    assert code == expected_code
    if expected.get("finished") is False:
        expected.pop("elapsed", None)  # only the program measures how long a running job has run
    assert answer == expected


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("jid,mode,msg", [
    ("j0.0", "status", "could not find job"),
    ("j0.0", "cleanup", "could not find job"),
    ("../x", "cleanup", "invalid job id"),
    (".hidden", "status", "invalid job id"),
    ("j1.1", "kill", "value of mode must be one of: cleanup, status, got: kill"),
])
def test_fallback_refuses_what_the_program_refuses(tmp_path, jid, mode, msg, way):
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    (async_dir / "j1.1").write_text("{}")
    (tmp_path / "x").write_text("keep")
    args = ansible_args(async_dir, jid, mode)
    for code, answer in (script(tmp_path, args, way), native(args)):
        assert code == 1 and answer["failed"] is True, answer
        assert answer["msg"].startswith(msg), answer
    assert (tmp_path / "x").read_text() == "keep"
    assert (async_dir / "j1.1").exists()


@pytest.mark.parametrize("way", WAYS)
def test_fallback_cleanup_removes_the_job_file_and_its_log(tmp_path, way):
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    (async_dir / "j1.1").write_text("{}")
    (async_dir / "j1.1.log").write_text("t invoked\n")
    code, answer = script(tmp_path, ansible_args(async_dir, "j1.1", "cleanup"), way)
    assert code == 0
    assert answer == {"ansible_job_id": "j1.1", "erased": str(async_dir / "j1.1")}
    assert sorted(p.name for p in async_dir.iterdir()) == []


# --- bad input: same answer as the program, or a clear failure; nothing run, nothing else touched

ODD = {
    "quote": 'a"b',
    "single-quote": "a'b",
    "backslash": "a\\b\\\\",
    "space": "a b",
    "newline": "a\nb",
    "tab": "a\tb",
    "command": "$(touch PWNED)",
    "backticks": "`touch PWNED`",
    "glob": "*",
    "non-ascii": "é😀ü",
    "heredoc-end": "x\nARGS\ntouch PWNED\n",
}


def other_job(tmp_path):
    """Another job's file beside the odd ones, that nothing may touch."""
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700, exist_ok=True)
    (async_dir / "j9.9").write_text('{"rc": 0}')
    return async_dir


def assert_untouched(tmp_path, async_dir):
    assert (async_dir / "j9.9").read_text() == '{"rc": 0}'
    assert not list(tmp_path.rglob("PWNED")), "a command in the arguments ran"


@pytest.mark.parametrize("with_program", [False, True], ids=["fallback", "program"])
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("mode", ["status", "cleanup"])
@pytest.mark.parametrize("odd", sorted(ODD))
def test_odd_job_ids(tmp_path, odd, mode, way, with_program):
    async_dir = other_job(tmp_path)
    if with_program:
        install_program(async_dir)
    jid = ODD[odd]
    args = ansible_args(async_dir, jid, mode)
    code, answer = script(tmp_path, args, way)
    expected_code, expected = native(args, cwd=tmp_path)
    assert (code, answer) == (expected_code, expected)
    assert answer["failed"] is True and answer["msg"].startswith("invalid job id"), answer
    assert_untouched(tmp_path, async_dir)


# /bin/sh is dash here; bash is /bin/sh on other hosts (as sh: POSIX mode).
SHELLS = ["/bin/sh"] + (["bash"] if shutil.which("bash") else [])


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("with_program", [False, True], ids=["fallback", "program"])
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("odd", sorted(set(ODD) - {"glob"}))
def test_odd_async_dirs(tmp_path, odd, way, with_program, shell):
    """A job in a dir whose name has odd characters: found, reported, cleaned up."""
    decoy = other_job(tmp_path)
    async_dir = tmp_path / f"odd {ODD[odd]} dir"
    async_dir.mkdir(mode=0o700)
    if with_program:
        install_program(async_dir)
    (async_dir / "j1.1").write_text('{"rc": 3, "changed": true}')
    (async_dir / "j9.9").symlink_to(decoy / "j9.9")
    for mode in ("status", "cleanup"):
        args = ansible_args(async_dir, "j1.1", mode)
        code, answer = script(tmp_path, args, way, shell=shell)
        assert code == 0, answer
        if mode == "status":
            assert answer == {"rc": 3, "changed": True, "finished": True, "ansible_job_id": "j1.1",
                              "results_file": str(async_dir / "j1.1")}
        else:
            assert answer == {"ansible_job_id": "j1.1", "erased": str(async_dir / "j1.1")}
    assert not (async_dir / "j1.1").exists()
    # What the program says about the job now gone, the script says too.
    args = ansible_args(async_dir, "j1.1")
    assert script(tmp_path, args, way, shell=shell) == native(args)
    assert_untouched(tmp_path, decoy)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("odd", sorted(ODD))
def test_odd_missing_async_dirs(tmp_path, odd, way):
    decoy = other_job(tmp_path)
    args = ansible_args(tmp_path / ODD[odd] / "async", "j9.9")
    code, answer = script(tmp_path, args, way)
    assert (code, answer) == native(args, cwd=tmp_path)
    assert answer["msg"] == "could not find job" and answer["searched"] == [args["_async_dir"]]
    assert_untouched(tmp_path, decoy)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("text,msg", [
    ("", "not valid JSON"),
    ("jid=j1.1 mode=status", "not valid JSON"),
    ('{"jid": "j1.1",}', "not valid JSON"),
    ('{"jid": "j1.1"} {}', "not valid JSON"),
    ('{"jid": "j1.1', "not valid JSON"),
    ('{"jid": "a\\qb"}', "not valid JSON"),
    ('{"jid": 01}', "not valid JSON"),
    ('{"jid": tru}', "not valid JSON"),
    ('{"jid": ["j1.1"', "not valid JSON"),
    ('["j1.1"]', "not a JSON object"),
    ('"j1.1"', "not a JSON object"),
    ("17", "not a JSON object"),
    ("null", "not a JSON object"),
])
def test_arguments_that_are_not_a_json_object(tmp_path, text, msg, way):
    async_dir = other_job(tmp_path)
    code, answer = script(tmp_path, text, way, env={**os.environ, "ANSIBLE_ASYNC_DIR": str(async_dir)})
    assert code == 1 and answer["failed"] is True, answer
    assert msg in answer["msg"], answer
    native_code, native_answer = native(text)
    assert native_code == 1 and msg in native_answer["msg"], native_answer
    assert_untouched(tmp_path, async_dir)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("args,msg", [
    ({"jid": "j1.1", "bogus": 1}, "Unsupported parameters for (async_status) module: bogus."),
    ({"mode": "status"}, "missing required arguments: jid"),
    ({"jid": None}, "missing required arguments: jid"),
    ({"jid": ["j1.1"]}, "argument 'jid' must be a string"),
    ({"jid": "j1.1", "_async_dir": True}, "argument '_async_dir' must be a string"),
])
def test_wrong_arguments(tmp_path, args, msg, way):
    code, answer = script(tmp_path, args, way)
    assert code == 1 and answer["msg"].startswith(msg), answer
    native_code, native_answer = native(args)
    assert native_code == 1 and native_answer["msg"].startswith(msg), native_answer


# --- with the program on the host ----------------------------------------------------------

@pytest.mark.parametrize("way", WAYS)
def test_with_the_program_on_the_host_it_runs_the_program(tmp_path, way):
    async_dir = tmp_path / "async"
    module = tmp_path / "ansible-tmp-1" / "m"
    module.parent.mkdir()
    module.write_text("#!/bin/sh\nexec sleep 30\n")
    env = {"PATH": "/usr/bin:/bin", "ANSIBLE_ASYNC_DIR": str(async_dir), "HOME": str(tmp_path)}
    started = subprocess.run(["/bin/sh", str(LAUNCHER), "j7", "60", str(module), "_", "-preserve_tmp"],
                             env=env, capture_output=True, text=True, timeout=30, check=True)
    jid = json.loads(started.stdout)["ansible_job_id"]
    # The launcher names its copy by architecture (ansible-async-<id>.<arch>).
    copies = list((async_dir / ".bin").iterdir())
    assert [c.name for c in copies] == [f"ansible-async-{payload_id()}.{HOST_ARCH}"]
    try:
        code, answer = script(tmp_path, ansible_args(async_dir, jid), way)
        assert code == 0 and answer["finished"] is False
        # Only the program measures how long a job has run.
        assert isinstance(answer["elapsed"], float)
    finally:
        subprocess.run([str(PROGRAM), "async_job", "--async-dir", str(async_dir), "terminate", jid],
                       capture_output=True, timeout=30)


@pytest.mark.parametrize("way", WAYS)
def test_with_copies_for_two_architectures_it_runs_the_one_for_this_host(tmp_path, way):
    async_dir = running_job(tmp_path)
    install_program(async_dir)
    other = next(arch for arch in ARCHES if arch != HOST_ARCH)
    foreign = async_dir / ".bin" / f"ansible-async-{payload_id()}.{other}"
    foreign.write_text("#!/bin/sh\necho '{\"failed\": true, \"msg\": \"wrong architecture\"}'\n")
    foreign.chmod(0o700)
    code, answer = script(tmp_path, ansible_args(async_dir, "j1.1"), way)
    assert code == 0 and answer["finished"] is False and "elapsed" in answer, answer


def test_pipelined_the_program_does_not_read_the_script_text(tmp_path):
    """Piped, the rest of the module text is still on stdin: the program gets /dev/null."""
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    (async_dir / "j1.1").write_text("{}")
    bin_dir = async_dir / ".bin"
    bin_dir.mkdir(mode=0o700)
    spy = bin_dir / f"ansible-async-{payload_id()}.{HOST_ARCH}"
    spy.write_text(f"#!/bin/sh\nhead -c 64 | wc -c >{tmp_path}/stdin-bytes\nexec {PROGRAM} \"$@\"\n")
    spy.chmod(0o700)
    code, answer = script(tmp_path, ansible_args(async_dir, "j1.1"), "pipelined")
    assert (code, answer) == (0, {"finished": True, "ansible_job_id": "j1.1",
                                  "results_file": str(async_dir / "j1.1")})
    assert (tmp_path / "stdin-bytes").read_text().strip() == "0"


@pytest.mark.parametrize("way", WAYS)
def test_a_symlinked_program_dir_is_not_used(tmp_path, way):
    """<async dir>/.bin as a symbolic link (to wherever): its program is not run."""
    async_dir = running_job(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    install_program(elsewhere)
    (async_dir / ".bin").symlink_to(elsewhere / ".bin")
    code, answer = script(tmp_path, ansible_args(async_dir, "j1.1"), way)
    # Python's answer: the program would have added "elapsed".
    assert code == 0 and answer["finished"] is False and "elapsed" not in answer, answer


@pytest.mark.parametrize("way", WAYS)
def test_an_empty_program_copy_is_not_run(tmp_path, way):
    """A copy left empty (a full disk while it was unpacked): the launcher's rule, not run (sh
    would run an empty file as a script, and answer nothing); Python answers."""
    async_dir = running_job(tmp_path)
    bin_dir = async_dir / ".bin"
    bin_dir.mkdir(mode=0o700)
    empty = bin_dir / f"ansible-async-{payload_id()}.{HOST_ARCH}"
    empty.touch(mode=0o700)
    code, answer = script(tmp_path, ansible_args(async_dir, "j1.1"), way)
    assert code == 0 and answer["finished"] is False and "elapsed" not in answer, answer


@pytest.mark.parametrize("way", WAYS)
def test_another_releases_program_answers_while_this_ones_is_missing(tmp_path, way):
    """After an upgrade of the library, jobs started by the old release are polled by the new
    script before the new wrapper ran on the host: the old release's program answers."""
    async_dir = running_job(tmp_path)
    install_program(async_dir, release="0123456789abcdef")
    code, answer = script(tmp_path, ansible_args(async_dir, "j1.1"), way)
    assert code == 0 and answer["finished"] is False and "elapsed" in answer, answer


def no_python_path(tmp_path):
    """A PATH with what the script may use and no python."""
    tools = tmp_path / "tools"
    tools.mkdir()
    uname = shutil.which("uname")
    (tools / "uname").symlink_to(uname)
    return str(tools)


@pytest.mark.parametrize("way", WAYS)
def test_without_program_or_python_it_fails_saying_what_is_missing(tmp_path, way):
    async_dir = running_job(tmp_path)
    code, answer = script(tmp_path, ansible_args(async_dir, "j1.1"), way,
                          env={"PATH": no_python_path(tmp_path), "HOME": str(tmp_path)})
    assert (code, answer) == (1, {"failed": True, "msg": "async_status: no ansible-async program or python here"})


@pytest.mark.parametrize("way", WAYS)
def test_a_python_without_json_fails_naming_the_missing_module(tmp_path, way):
    """Debian's python3-minimal has no json: a failed result, not a traceback."""
    async_dir = running_job(tmp_path)
    shadow = tmp_path / "shadow" / "json"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'json'\")\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    code, answer = script(tmp_path, ansible_args(async_dir, "j1.1"), way, env=env)
    assert code == 1 and answer["failed"] is True, answer
    assert answer["msg"].startswith("async_status: ") and answer["msg"].endswith(
        ": No module named 'json' (install python3)"), answer


def test_the_script_fits_in_4_kib():
    """It travels with every poll: bytes a slow link pays each time."""
    assert len(STATUS.read_bytes()) <= 4096


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("given", ["$HOME/async", "${HOME}/async", "~/async"])
def test_an_async_dir_under_home_is_answered_by_the_program(tmp_path, way, given):
    """ansible passes `$HOME/...` as it is (it expands only `~`), and this project's action
    plugin passes `~/...` as it is: the script finds the program under $HOME (here the test's
    dir), and the program expands the dir itself (`~` to the passwd home, then the job
    re-anchored on $HOME). Python alone would look under the passwd home."""
    async_dir = running_job(tmp_path)
    install_program(async_dir)
    args = ansible_args(async_dir, "j1.1")
    args["_async_dir"] = given
    code, answer = script(tmp_path, args, way, env={**os.environ, "HOME": str(tmp_path)})
    assert code == 0 and answer["finished"] is False and "elapsed" in answer, answer
