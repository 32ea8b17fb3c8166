"""library/async_wrapper and library/async_status as files: what ansible sees in them, and
what they do on a host.

Run after `make build`, with the python of a controller venv (it imports ansible to ask
ansible itself how it classifies the file).
"""

import gzip
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from ansible.executor import module_common

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "library" / "async_wrapper"
PROGRAM = REPO / "target" / "x86_64-unknown-linux-gnu" / "release" / "ansible-async"
STATUS = REPO / "library" / "async_status"
JOB = REPO / "library" / "async_job"


def payload(launcher: Path) -> bytes:
    """The program a launcher carries, unpacked."""
    data = launcher.read_bytes()
    size = int(next(line for line in data.split(b"\n") if line.startswith(b"payload_size=")).split(b"=")[1].split()[0])
    return gzip.decompress(data[-size:])


def run_launcher(launcher, env, *, user=None, args=("j1", "5", "/nonexistent/m", "_")):
    cmd = ["/bin/sh", str(launcher), *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *cmd]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=30)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def base_env(**extra):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    env.update(extra)
    return env


@pytest.fixture
def world_tmp():
    """A temp dir other users can reach (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="launcher-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_ansible_sees_an_old_style_script_with_a_sh_shebang():
    data = LAUNCHER.read_bytes()
    assert data.startswith(b"#!/bin/sh\n")
    assert not module_common._is_binary(data), "ansible would call it a binary and crash"
    assert module_common.REPLACER not in data
    assert module_common.REPLACER_JSONARGS not in data
    assert module_common.REPLACER_WINDOWS not in data
    assert b"WANT_JSON" not in data
    assert module_common.NEW_STYLE_PYTHON_MODULE_RE.search(data) is None
    assert payload(LAUNCHER) == PROGRAM.read_bytes()


def test_ansible_sees_async_status_as_a_small_json_args_script():
    """A 'new'-style module of substyle jsonargs: ansible writes the arguments into it and,
    with pipelining on, runs it in one SSH command; no arguments file (that is WANT_JSON)."""
    data = STATUS.read_bytes()
    assert data.startswith(b"#!/bin/sh\n")
    assert not module_common._is_binary(data)
    assert data.count(module_common.REPLACER_JSONARGS) == 1
    assert b"WANT_JSON" not in data
    # Markers ansible checks before the JSON-args one, or replaces in a JSON-args module.
    assert module_common.REPLACER not in data
    assert module_common.NEW_STYLE_PYTHON_MODULE_RE.search(data) is None
    assert module_common.REPLACER_WINDOWS not in data
    assert b"#Requires -" not in data and b"#AnsibleRequires -" not in data
    for replaced in (module_common.REPLACER_VERSION, module_common.REPLACER_COMPLEX,
                     module_common.REPLACER_SELINUX, b"syslog.LOG_USER"):
        assert replaced not in data, replaced
    assert len(data) < 16384


def test_keeps_one_private_copy_and_does_not_rewrite_it(tmp_path):
    async_dir = tmp_path / "async"
    env = base_env(ANSIBLE_ASYNC_DIR=str(async_dir))
    rc, reply, _ = run_launcher(LAUNCHER, env)
    assert rc == 0 and reply["started"] is True, reply
    copies = list((async_dir / ".bin").iterdir())
    assert len(copies) == 1 and copies[0].name.startswith("ansible-async-")
    assert copies[0].read_bytes() == PROGRAM.read_bytes()
    assert stat.S_IMODE(copies[0].stat().st_mode) == 0o700
    assert stat.S_IMODE((async_dir / ".bin").stat().st_mode) == 0o700
    assert stat.S_IMODE(async_dir.stat().st_mode) == 0o700
    before = copies[0].stat()

    rc, reply, _ = run_launcher(LAUNCHER, env)
    assert rc == 0 and reply["started"] is True
    after = copies[0].stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list((async_dir / ".bin").iterdir()) == copies


def test_replaces_a_copy_of_an_older_build(tmp_path):
    bin_dir = tmp_path / "async" / ".bin"
    bin_dir.mkdir(parents=True, mode=0o700)
    (tmp_path / "async").chmod(0o700)
    old = bin_dir / "ansible-async-0000000000000000"
    old.write_bytes(b"old build")
    rc, reply, _ = run_launcher(LAUNCHER, base_env(ANSIBLE_ASYNC_DIR=str(tmp_path / "async")))
    assert rc == 0 and reply["started"] is True
    assert not old.exists()
    assert len(list(bin_dir.iterdir())) == 1


def test_still_works_when_ansible_rewrites_the_shebang(tmp_path):
    # ansible_sh_interpreter makes ansible replace the first line with a longer one.
    data = LAUNCHER.read_bytes().replace(b"#!/bin/sh\n", b"#!/usr/bin/env   sh\n", 1)
    rewritten = tmp_path / "async_wrapper"
    rewritten.write_bytes(data)
    rc, reply, _ = run_launcher(rewritten, base_env(ANSIBLE_ASYNC_DIR=str(tmp_path / "async")))
    assert rc == 0 and reply["started"] is True, reply
    copy = next((tmp_path / "async" / ".bin").iterdir())
    assert copy.read_bytes() == PROGRAM.read_bytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_unprivileged_user_with_read_only_launcher_dir_and_default_async_dir(world_tmp):
    nobody = pwd.getpwnam("nobody")
    shipped = world_tmp / "shipped"
    shipped.mkdir()
    shutil.copy(LAUNCHER, shipped / "async_wrapper")
    shipped.chmod(0o555)  # like an ansible tmp dir of another user: not writable here
    home = world_tmp / "home"
    home.mkdir()
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    rc, reply, stderr = run_launcher(shipped / "async_wrapper", base_env(HOME=str(home)), user=nobody)
    assert rc == 0 and reply["started"] is True, (reply, stderr)
    assert reply["results_file"].startswith(str(home / ".ansible_async") + "/")
    job_file = Path(reply["results_file"])
    assert job_file.stat().st_uid == nobody.pw_uid
    assert stat.S_IMODE(job_file.stat().st_mode) == 0o600
    assert sorted(os.listdir(shipped)) == ["async_wrapper"]


def test_async_dir_that_cannot_be_created_is_a_failed_reply(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    rc, reply, _ = run_launcher(LAUNCHER, base_env(ANSIBLE_ASYNC_DIR=str(blocker / "async")))
    assert rc == 1
    assert reply["failed"] is True
    assert reply["msg"].startswith(f"could not create directory: {blocker / 'async'}"), reply
    assert blocker.read_text() == "keep"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a dir owned by another user")
def test_async_dir_of_another_user_is_refused(tmp_path):
    nobody = pwd.getpwnam("nobody")
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, nobody.pw_uid, nobody.pw_gid)
    rc, reply, _ = run_launcher(LAUNCHER, base_env(ANSIBLE_ASYNC_DIR=str(foreign)))
    assert rc == 1
    assert reply["failed"] is True
    assert "refusing to use async directory" in reply["msg"], reply
    assert os.listdir(foreign) == []


@pytest.mark.parametrize("program", [PROGRAM, JOB], ids=["ansible-async", "async_job"])
def test_programs_are_statically_linked(program):
    described = subprocess.run(["file", "-b", str(program)], capture_output=True, text=True).stdout
    assert "statically linked" in described or "static-pie linked" in described, described
    ldd = subprocess.run(["ldd", str(program)], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr or "statically linked" in ldd.stdout + ldd.stderr
