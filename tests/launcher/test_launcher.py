"""library/async_wrapper, library/async_job and library/async_status as files: what ansible
sees in them, and what they do on a host.

Run after `make build`, with the python of a controller venv (it imports ansible to ask
ansible itself how it classifies the file).
"""

import contextlib
import gzip
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from ansible.executor import module_common

from harness.arches import ARCHES, HOST_ARCH
from harness.jobs import wait_finished
from harness.mounts import covered
from harness.paths import LIBRARY
from harness.paths import PROGRAMS as PROGRAMS_DIR
from harness.users import temp_user

LAUNCHER = LIBRARY / "async_wrapper"
PROGRAMS = {arch: PROGRAMS_DIR / f"ansible-async.{arch}" for arch in ARCHES}
PROGRAM = PROGRAMS[HOST_ARCH]
# Another architecture's program, for an async dir a host of another kind shares.
OTHER_ARCH = next(arch for arch in ARCHES if arch != HOST_ARCH)
STATUS = LIBRARY / "async_status"
JOB = LIBRARY / "async_job"
ELF_MACHINE = {"x86_64": 62, "aarch64": 183, "riscv64": 243}  # e_machine of each architecture's ELF


def launcher_vars(launcher: Path) -> dict:
    """The numbers and ids assemble.sh wrote into a launcher's text."""
    text = launcher.read_bytes()[:8192].decode("utf-8", "replace")
    return {key: value for key, value in re.findall(r"\b([a-z0-9_]+)=([0-9a-f]+)\b", text)}


def payload_table(launcher: Path) -> dict:
    """arch -> (bytes gzipped, unpacked, gzipped bytes after it): the cases of the launcher's
    `payload` function that assemble.sh wrote from the arch list."""
    text = launcher.read_bytes()[:8192].decode("utf-8", "replace")
    return {arch: tuple(map(int, sizes)) for arch, *sizes in
            re.findall(r"^ +([a-z0-9_]+)\) gz=([0-9]+) size=([0-9]+) after=([0-9]+) ;;$", text, re.M)}


def payload(launcher: Path, arch=HOST_ARCH) -> bytes:
    """The program for ARCH a launcher carries, unpacked."""
    data = launcher.read_bytes()
    gz, size, after = payload_table(launcher)[arch]
    program = gzip.decompress(data[len(data) - after - gz:len(data) - after])
    assert len(program) == size
    return program


def cached(async_dir: Path, arch=HOST_ARCH) -> Path:
    return async_dir / ".bin" / f"ansible-async-{launcher_vars(LAUNCHER)['release_id']}.{arch}"


def fake_path(tmp_path: Path, *, without=(), uname=None) -> str:
    """A PATH of this machine's commands less WITHOUT, with a uname that prints UNAME."""
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in os.scandir(folder):
            target = tools / entry.name
            if entry.name not in without and not target.exists() and not target.is_symlink():
                target.symlink_to(entry.path)
    if uname is not None:
        (tools / "uname").unlink(missing_ok=True)
        (tools / "uname").write_text(f"#!/bin/sh\necho '{uname}'\n")
        (tools / "uname").chmod(0o755)
    return str(tools)


KERNEL_ARCH = Path("/proc/sys/kernel/arch")


def as_host(tmp_path: Path, host) -> list[str]:
    """A command prefix: what follows runs as on a host whose `uname -sm` says HOST (None: no
    uname), for the scripts, which read /proc/sys/kernel/arch before they ask uname: in a
    private mount namespace where that file says HOST's machine (Linux) or is not there. uname
    itself is fake_path's."""
    if not KERNEL_ARCH.exists():
        return []
    namespace = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
    if host and host.startswith("Linux "):
        machine = tmp_path / "kernel-arch"
        machine.write_text(host.split(" ", 1)[1] + "\n")
        return [*namespace, f'mount --bind "$0" {KERNEL_ARCH} && exec "$@"', str(machine)]
    return [*namespace, f'mount -t tmpfs -o size=4k none {KERNEL_ARCH.parent} && exec "$@"', "_"]


def run_launcher(launcher, env, *, user=None, args=("j1", "5", "/nonexistent/m", "_"), prefix=()):
    cmd = [*prefix, "/bin/sh", str(launcher), *args]
    if user is not None:
        cmd = [*prefix, "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
               *cmd[len(prefix):]]
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
    for arch, program in PROGRAMS.items():
        assert payload(LAUNCHER, arch) == program.read_bytes()


def test_ansible_sees_async_job_as_a_small_json_args_script():
    """Like async_status: ansible writes the arguments into it and, with pipelining on, runs it
    in one SSH command; it carries no program (it runs the one async_wrapper left)."""
    data = JOB.read_bytes()
    assert data.startswith(b"#!/bin/sh\n")
    assert not module_common._is_binary(data)
    assert data.count(module_common.REPLACER_JSONARGS) == 1
    assert b"WANT_JSON" not in data
    assert module_common.REPLACER not in data and module_common.REPLACER_WINDOWS not in data
    assert module_common.NEW_STYLE_PYTHON_MODULE_RE.search(data) is None
    assert len(data) < 8192
    assert launcher_vars(JOB)["payload_id"] == launcher_vars(LAUNCHER)["release_id"]
    first_looked_for = re.search(r'cached_program "\$d" ([0-9a-f]{16}) ', STATUS.read_text()).group(1)
    assert first_looked_for == launcher_vars(LAUNCHER)["release_id"]


@pytest.mark.parametrize("arch", sorted(PROGRAMS))
def test_programs_are_static_elf_for_their_architecture(arch):
    data = PROGRAMS[arch].read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2  # 64-bit
    assert int.from_bytes(data[18:20], "little") == ELF_MACHINE[arch]
    described = subprocess.run(["file", "-b", str(PROGRAMS[arch])], capture_output=True, text=True).stdout
    assert "statically linked" in described or "static-pie linked" in described, described


def test_wrapper_file_with_both_programs_fits_the_size_budget():
    # Copied to the host once per async task (stock's is ~181 KB, and stock copies ~178 KB more
    # on every poll, ours ~4 KB). 362 KB once zopfli packed the programs, the fallback's Python
    # went deflated after them, the scripts lost their comment lines and the programs their
    # unwind tables; 416 KB with a running job's progress, async_job top and results held in
    # memory; 388 KB once the programs read decimals without the standard library's float
    # parser (its tables were 14 KB of each gzipped program) and the Python lost its long
    # names (docs/BUILD.md says what each part costs).
    assert LAUNCHER.stat().st_size < 400_000


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
    assert copies == [cached(async_dir)]
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


def test_replaces_copies_of_older_builds_for_its_architecture_only(tmp_path):
    async_dir = tmp_path / "async"
    bin_dir = async_dir / ".bin"
    bin_dir.mkdir(parents=True, mode=0o700)
    async_dir.chmod(0o700)
    same_arch = bin_dir / f"ansible-async-0000000000000000.{HOST_ARCH}"
    other_arch = bin_dir / f"ansible-async-0000000000000000.{OTHER_ARCH}"  # a host of another kind
    for old in (same_arch, other_arch):
        old.write_bytes(b"old build")
    rc, reply, _ = run_launcher(LAUNCHER, base_env(ANSIBLE_ASYNC_DIR=str(async_dir)))
    assert rc == 0 and reply["started"] is True
    assert sorted(bin_dir.iterdir()) == sorted([other_arch, cached(async_dir)])


def test_still_works_when_ansible_rewrites_the_shebang(tmp_path):
    # ansible_sh_interpreter makes ansible replace the first line with a longer one.
    data = LAUNCHER.read_bytes().replace(b"#!/bin/sh\n", b"#!/usr/bin/env   sh\n", 1)
    rewritten = tmp_path / "async_wrapper"
    rewritten.write_bytes(data)
    rc, reply, _ = run_launcher(rewritten, base_env(ANSIBLE_ASYNC_DIR=str(tmp_path / "async")))
    assert rc == 0 and reply["started"] is True, reply
    assert cached(tmp_path / "async").read_bytes() == PROGRAM.read_bytes()


@pytest.fixture
def home_user(world_tmp):
    """A user made for the test whose passwd home is a fresh folder (the default async dir is
    under the passwd home, whatever HOME says)."""
    with temp_user("asynclaunch", world_tmp / "home", home_mode=0o755) as user:
        yield user


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_unprivileged_user_with_read_only_launcher_dir_and_default_async_dir(world_tmp, home_user):
    shipped = world_tmp / "shipped"
    shipped.mkdir()
    shutil.copy(LAUNCHER, shipped / "async_wrapper")
    shipped.chmod(0o555)  # like an ansible tmp dir of another user: not writable here
    home = Path(home_user.pw_dir)
    # HOME points elsewhere (a task's `environment:`, `sudo -E`): the passwd home wins, as it
    # does for ansible's own `echo ~user` that async_status gets its dir from.
    elsewhere = world_tmp / "elsewhere"
    elsewhere.mkdir()
    os.chown(elsewhere, home_user.pw_uid, home_user.pw_gid)
    for env in (base_env(HOME=str(elsewhere)), base_env(HOME=""), base_env(ANSIBLE_ASYNC_DIR="$HOME/async")):
        rc, reply, stderr = run_launcher(shipped / "async_wrapper", env, user=home_user)
        assert rc == 0 and reply["started"] is True, (reply, stderr)
        job_file = Path(reply["results_file"])
        assert job_file.parent in (home / ".ansible_async", home / "async"), reply
        assert job_file.stat().st_uid == home_user.pw_uid
        assert stat.S_IMODE(job_file.stat().st_mode) == 0o600
        # The launcher kept the program in the same dir's .bin, where async_status looks.
        assert any((job_file.parent / ".bin").iterdir())
    assert not any(elsewhere.iterdir())
    assert sorted(os.listdir(shipped)) == ["async_wrapper"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount and to act as another user")
def test_a_user_far_down_a_long_passwd_gets_the_passwd_home(world_tmp, home_user):
    # The launcher reads only the first lines of /etc/passwd itself; past them, `id -un` names
    # the user. This host's passwd with 200 other users before it, in a private mount namespace.
    passwd = world_tmp / "passwd"
    fillers = "".join(f"filler{i}:x:{60000 + i}:{60000 + i}::/nonexistent:/bin/false\n" for i in range(200))
    passwd.write_text(fillers + Path("/etc/passwd").read_text())
    passwd.chmod(0o644)
    private = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount --bind "$0" /etc/passwd && exec "$@"', str(passwd)]
    home = Path(home_user.pw_dir)
    elsewhere = world_tmp / "elsewhere"
    elsewhere.mkdir()
    os.chown(elsewhere, home_user.pw_uid, home_user.pw_gid)
    shutil.copy(LAUNCHER, world_tmp / "async_wrapper")  # where the user can read it
    rc, reply, stderr = run_launcher(world_tmp / "async_wrapper", base_env(HOME=str(elsewhere)), user=home_user,
                                     prefix=private)
    assert rc == 0 and reply["started"] is True, (reply, stderr)
    assert Path(reply["results_file"]).parent == home / ".ansible_async", reply
    assert any((home / ".ansible_async" / ".bin").iterdir())
    assert not any(elsewhere.iterdir())


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


@pytest.mark.parametrize("program", sorted(PROGRAMS.values()), ids=sorted(PROGRAMS))
def test_programs_are_statically_linked(program):
    ldd = subprocess.run(["ldd", str(program)], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr or "statically linked" in ldd.stdout + ldd.stderr


def job_result(async_dir: Path, reply: dict) -> dict:
    """The job's result once it has finished (the test modules end at once)."""
    return wait_finished(async_dir, reply["ansible_job_id"], timeout=30)


def echo_module(tmp_path: Path) -> Path:
    module = tmp_path / "ansible-tmp-1" / "m"
    module.parent.mkdir(exist_ok=True)
    module.write_text('#!/bin/sh\necho \'{"changed": false, "said": "hi"}\'\n')
    module.chmod(0o755)
    return module


# What the launcher checks without reading the copy: the copy under this release's name got it
# only once complete and run, and the name is the programs' content; a copy changed in place
# later (truncated, another architecture's bytes: nothing but its owner can write it) is not
# caught. These are.
@pytest.mark.parametrize("damage", ["not-executable", "empty"])
def test_a_damaged_copy_is_replaced_and_the_job_runs(tmp_path, damage):
    async_dir = tmp_path / "async"
    env = base_env(ANSIBLE_ASYNC_DIR=str(async_dir))
    args = ("j1", "30", str(echo_module(tmp_path)), "_", "-preserve_tmp")
    rc, reply, _ = run_launcher(LAUNCHER, env, args=args)
    assert rc == 0 and job_result(async_dir, reply)["said"] == "hi"
    copy = cached(async_dir)
    # Replaced, not written in place: the first job's supervisor may still run from it.
    damaged = copy.with_name("damaged")
    damaged.write_bytes(b"" if damage == "empty" else PROGRAM.read_bytes())
    damaged.chmod(0o600 if damage == "not-executable" else 0o700)
    damaged.replace(copy)
    rc, reply, stderr = run_launcher(LAUNCHER, env, args=args)
    assert rc == 0 and reply["started"] is True, (reply, stderr)
    assert job_result(async_dir, reply)["said"] == "hi"
    assert copy.read_bytes() == PROGRAM.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a file system")
def test_on_a_noexec_async_dir_the_job_runs_from_a_private_temp_copy(tmp_path):
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,size=16m,mode=0700", "tmpfs", str(async_dir)], check=True)
    try:
        temp = tmp_path / "temp"
        temp.mkdir()
        env = base_env(ANSIBLE_ASYNC_DIR=str(async_dir), TMPDIR=str(temp))
        rc, reply, stderr = run_launcher(LAUNCHER, env, args=("j1", "30", str(echo_module(tmp_path)), "_"))
        assert rc == 0 and reply["started"] is True, (reply, stderr)
        assert job_result(async_dir, reply)["said"] == "hi"
        assert list((async_dir / ".bin").iterdir()) == [], "a copy that cannot run was kept"
        assert list(temp.iterdir()) == [], "the temp copy was not removed"
    finally:
        subprocess.run(["umount", "-l", str(async_dir)], check=True)


def test_without_gzip_the_reply_names_it(tmp_path):
    env = base_env(ANSIBLE_ASYNC_DIR=str(tmp_path / "async"), PATH=fake_path(tmp_path, without=("gzip",)))
    rc, reply, stderr = run_launcher(LAUNCHER, env)
    assert rc == 1 and reply["failed"] is True, (reply, stderr)
    assert "needs gzip" in reply["msg"] and "not installed" in reply["msg"], reply
    assert stderr == b""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a file system")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount and to act as another user")
def test_on_a_read_only_home_the_reply_names_it(world_tmp, home_user):
    # The default async dir is under the passwd home (whatever HOME says): make that read-only.
    home = Path(home_user.pw_dir)
    shipped = world_tmp / "shipped"
    shipped.mkdir()
    shutil.copy(LAUNCHER, shipped / "async_wrapper")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(home)], check=True)
    try:
        rc, reply, stderr = run_launcher(shipped / "async_wrapper", base_env(HOME=str(home)), user=home_user)
        assert rc == 1 and reply["failed"] is True, (reply, stderr)
        assert reply["msg"].startswith(f"could not create directory: {home}/.ansible_async")
        assert "Read-only file system" in reply["msg"], reply
    finally:
        subprocess.run(["umount", "-l", str(home)], check=True)


@pytest.mark.parametrize("host", ["unknown-arch", "no-uname", "forced"])
def test_without_a_native_program_the_wrapper_hands_over_to_the_fallback(tmp_path, host):
    env = base_env(ANSIBLE_ASYNC_DIR=str(tmp_path / "async"))
    prefix = []
    if host == "unknown-arch":
        env["PATH"] = fake_path(tmp_path, uname="Linux riscv64")
        prefix = as_host(tmp_path, "Linux riscv64")
    elif host == "no-uname":
        env["PATH"] = fake_path(tmp_path, without=("uname",))
        prefix = as_host(tmp_path, None)
    else:
        env["ASYNC_WRAPPER_FALLBACK"] = "1"
    args = ("j1", "30", str(echo_module(tmp_path)), "_")
    proc = subprocess.run([*prefix, "/bin/sh", str(LAUNCHER), *args], env=env, capture_output=True, timeout=60)
    reply = json.loads(proc.stdout)  # the fallback's reply, never a shell error
    assert not list((tmp_path / "async" / ".bin").glob("ansible-async-*")), "a native program was unpacked"
    if reply.get("failed"):  # no fallback in this build: it says so
        assert proc.returncode == 1 and "fallback" in reply["msg"], reply
    else:
        assert reply["started"] in (True, 1)
        assert job_result(tmp_path / "async", reply)["said"] == "hi"


JOB_MARKER = "<<INCLUDE_ANSIBLE_MODULE_" + "JSON_ARGS>>"


def run_job(tmp_path, args, *, env, way="file", argv=(), own_usual_dir=False, prefix=()):
    """library/async_job as ansible runs it: the arguments written in place of the marker, the
    text run as a file (pipelining off) or fed to /bin/sh over stdin (pipelining on). `args`
    None: the file as it is, run by hand with `argv`. `own_usual_dir`: in a private mount
    namespace where the passwd home's ~/.ansible_async (which any async task run on this
    machine as this user fills) is an empty folder of the test's."""
    text = JOB.read_text()
    if args is not None:
        text = text.replace(JOB_MARKER, json.dumps(args))
    with contextlib.ExitStack() as stack:
        prefix = list(prefix)
        if own_usual_dir:
            empty, usual = tmp_path / "usual-empty", Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ansible_async"
            empty.mkdir(mode=0o700)
            prefix += stack.enter_context(covered(usual, empty))
        if way == "file":
            path = tmp_path / "AnsiballZ_async_job"
            path.write_text(text)
            return subprocess.run([*prefix, "/bin/sh", str(path), *argv], stdin=subprocess.DEVNULL, env=env,
                                  capture_output=True, text=True, timeout=60, cwd=tmp_path)
        return subprocess.run([*prefix, "/bin/sh"], input=text, env=env, capture_output=True, text=True, timeout=60,
                              cwd=tmp_path)


def job_args(async_dir, **args):
    return {**args, "async_dir": str(async_dir), "_ansible_check_mode": False, "_ansible_no_log": False}


def cache_program(tmp_path, async_dir):
    """Runs one async task's wrapper, which leaves the program in async_dir/.bin."""
    rc, reply, _ = run_launcher(LAUNCHER, base_env(ANSIBLE_ASYNC_DIR=str(async_dir)),
                                args=("j1", "30", str(echo_module(tmp_path)), "_", "-preserve_tmp"))
    job_result(async_dir, reply)
    return reply["ansible_job_id"]


@pytest.mark.parametrize("uname", ["Linux riscv64", "FreeBSD amd64"])
def test_async_job_without_a_native_program_is_a_failed_reply(tmp_path, uname):
    env = base_env(ANSIBLE_ASYNC_DIR=str(tmp_path / "async"), PATH=fake_path(tmp_path, uname=uname))
    proc = run_job(tmp_path, job_args(tmp_path / "async", mode="list"), env=env, prefix=as_host(tmp_path, uname))
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {"failed": True, "msg": f"async_job: no native program for this host ({uname})"}


def binfmt_runs_all_arches() -> bool:
    """qemu-user binfmt handlers run the programs of every other architecture of the list."""
    try:
        return all(Path(f"/proc/sys/fs/binfmt_misc/qemu-{arch}").read_text().startswith("enabled")
                   for arch in ARCHES if arch != HOST_ARCH)
    except OSError:
        return False


@pytest.mark.skipif(not binfmt_runs_all_arches(), reason="needs qemu-user binfmt for the other architectures")
def test_an_async_dir_shared_by_every_architecture_keeps_one_copy_each(tmp_path):
    async_dir = tmp_path / "async"
    module = echo_module(tmp_path)
    for arch in [*ARCHES, *ARCHES]:
        uname = f"Linux {ARCHES[arch][0][0]}"
        env = base_env(ANSIBLE_ASYNC_DIR=str(async_dir), PATH=fake_path(tmp_path, uname=uname))
        rc, reply, stderr = run_launcher(LAUNCHER, env, args=("j1", "30", str(module), "_", "-preserve_tmp"),
                                         prefix=as_host(tmp_path, uname))
        assert rc == 0 and job_result(async_dir, reply)["said"] == "hi", (uname, reply, stderr)
    assert sorted((async_dir / ".bin").iterdir()) == sorted(cached(async_dir, arch) for arch in ARCHES)
    for arch in PROGRAMS:
        assert cached(async_dir, arch).read_bytes() == PROGRAMS[arch].read_bytes()


@pytest.mark.parametrize("way", ["file", "pipelined"])
def test_async_job_where_no_async_task_ran_says_what_to_do_and_creates_nothing(tmp_path, way):
    missing = tmp_path / "nope"
    proc = run_job(tmp_path, job_args(missing, mode="list"), env=base_env(HOME=str(tmp_path)), way=way,
                   own_usual_dir=True)
    reply = json.loads(proc.stdout)
    assert proc.returncode == 1 and reply["failed"] is True, reply
    assert reply["msg"].startswith("async_job: the ansible-async program is not on this host for this user yet"), reply
    assert f"{missing}/.bin" in reply["msg"] and "run one first" in reply["msg"], reply
    assert not missing.exists() and not (tmp_path / ".ansible_async").exists()


def test_a_reply_naming_a_dir_with_control_characters_is_json(tmp_path):
    # The scripts' own replies name the dirs they looked in, control characters and all.
    missing = tmp_path / "no\x01such\tdir"
    proc = run_job(tmp_path, job_args(tmp_path / "nope", mode="list"),
                   env=base_env(HOME=str(tmp_path), ANSIBLE_ASYNC_DIR=str(missing)), own_usual_dir=True)
    reply = json.loads(proc.stdout)
    assert proc.returncode == 1 and reply["failed"] is True, reply
    assert f"{tmp_path}/no such dir/.bin" in reply["msg"], reply


def test_async_job_runs_the_program_cached_in_the_usual_dir_for_another_async_dir(tmp_path):
    """The program is the same wherever it is cached: an async_dir without a copy (here a missing
    one, which the program reports) is served by the copy in ANSIBLE_ASYNC_DIR (and
    ~/.ansible_async, the passwd home's: not to be touched by a test)."""
    cache_program(tmp_path, tmp_path / "usual")
    missing = tmp_path / "nope"
    proc = run_job(tmp_path, job_args(missing, mode="list"), env=base_env(ANSIBLE_ASYNC_DIR=str(tmp_path / "usual")))
    reply = json.loads(proc.stdout)
    assert proc.returncode == 1 and "does not exist" in reply["msg"], reply
    assert not missing.exists()


def test_async_job_runs_another_releases_copy_for_this_architecture(tmp_path):
    async_dir = tmp_path / "async"
    jid = cache_program(tmp_path, async_dir)
    cached(async_dir).rename(async_dir / ".bin" / f"ansible-async-0123456789abcdef.{HOST_ARCH}")
    proc = run_job(tmp_path, job_args(async_dir, mode="list"), env=base_env(HOME=str(tmp_path)))
    assert proc.returncode == 0 and [j["jid"] for j in json.loads(proc.stdout)["jobs"]] == [jid], proc


def test_async_job_pipelined_never_reads_the_script_text(tmp_path):
    """Piped, the rest of the module text is still on stdin: the program gets /dev/null."""
    async_dir = tmp_path / "async"
    cache_program(tmp_path, async_dir)
    program = cached(async_dir)
    real = program.with_name("real")
    program.rename(real)
    program.write_text(f"#!/bin/sh\nhead -c 64 | wc -c >{tmp_path}/stdin-bytes\nexec {real} \"$@\"\n")
    program.chmod(0o700)
    proc = run_job(tmp_path, job_args(async_dir, mode="list"), env=base_env(HOME=str(tmp_path)), way="pipelined")
    assert proc.returncode == 0 and json.loads(proc.stdout)["jobs"], proc
    assert (tmp_path / "stdin-bytes").read_text().strip() == "0"


def test_async_job_run_by_hand_passes_its_command_line_to_the_program(tmp_path):
    async_dir = tmp_path / "async"
    jid = cache_program(tmp_path, async_dir)
    for argv, env in ((("--async-dir", str(async_dir), "--json", "list"), base_env(HOME=str(tmp_path))),
                      (("--json", "list"), base_env(HOME=str(tmp_path), ANSIBLE_ASYNC_DIR=str(async_dir)))):
        proc = run_job(tmp_path, None, env=env, argv=argv)
        assert proc.returncode == 0 and [j["jid"] for j in json.loads(proc.stdout)["jobs"]] == [jid], proc
    proc = run_job(tmp_path, None, env=base_env(HOME=str(tmp_path / "empty")), argv=("list",), own_usual_dir=True)
    assert proc.returncode == 1 and proc.stdout == "", proc
    assert proc.stderr.startswith("async_job: the ansible-async program is not on this host"), proc.stderr


def test_async_job_as_a_module_uses_the_copy_in_the_async_dir_its_arguments_name(tmp_path):
    async_dir = tmp_path / "async"
    jid = cache_program(tmp_path, async_dir)
    before = cached(async_dir).stat()
    proc = run_job(tmp_path, job_args(async_dir, mode="list"), env=base_env(HOME=str(tmp_path)))
    listed = json.loads(proc.stdout)
    assert proc.returncode == 0 and [job["jid"] for job in listed["jobs"]] == [jid], listed
    after = cached(async_dir).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not (tmp_path / ".ansible_async").exists()
