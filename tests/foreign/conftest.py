"""Hosts of other architectures for tests/foreign: Debian roots (build-root.sh) run through
qemu-user and binfmt_misc, each reached by ansible over SSH: a private sshd on a loopback
port whose sessions are chrooted into the root (`ChrootDirectory`), so the shell, python3,
gzip and uname ansible finds there are the root's own arm64 or armhf programs.

Needs root (debootstrap, binfmt_misc, chroot, mount). The roots are cached outside the
clone (see build-root.sh): the first run builds them (measured: see README).
"""

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONTROLLERS = {
    "2.19": REPO / ".venv" / "core-2.19" / "bin",
    "2.21": REPO / ".venv" / "core-2.21" / "bin",
}
# Debian architecture -> what `uname -m` says there, and the ELF e_machine of its programs.
ARCHES = {"arm64": ("aarch64", 183), "armhf": ("armv7l", 40)}


def wait_until(predicate, timeout=30.0, what="condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def build_root(arch: str) -> Path:
    run = subprocess.run(["sh", str(HERE / "build-root.sh"), arch], stdout=subprocess.PIPE, text=True,
                         timeout=3000)
    assert run.returncode == 0, f"build-root.sh {arch} failed"
    return Path(run.stdout.strip().splitlines()[-1])


def mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


class Sshd:
    """A private sshd on 127.0.0.1 whose every session is chrooted into `root`."""

    def __init__(self, root: Path, work: Path):
        self.root = root
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.key = work / "client_key"
        host_key = work / "host_key"
        for key in (self.key, host_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = work / "authorized_keys"
        shutil.copy(f"{self.key}.pub", authorized)
        self.port = free_port()
        self.pid_file = work / "sshd.pid"
        self.log = work / "sshd.log"
        config = work / "sshd_config"
        config.write_text(f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {self.pid_file}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 100:30:200
MaxSessions 50
PrintMotd no
# Every session runs inside the foreign root; sftp (ansible's file transfer) in sshd itself.
ChrootDirectory {root}
Subsystem sftp internal-sftp
LogLevel VERBOSE
""")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        subprocess.run(["/usr/sbin/sshd", "-f", str(config), "-E", str(self.log)], check=True)
        wait_until(lambda: self.pid_file.exists() and port_open(self.port), 20, "sshd to listen")
        self.pid = int(self.pid_file.read_text())

    def stop(self):
        try:
            os.kill(self.pid, 15)
        except ProcessLookupError:
            pass


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


class ForeignHost:
    """One foreign root, reachable by ansible as host `name`."""

    def __init__(self, arch: str, root: Path, sshd: Sshd, tmp: Path):
        self.arch = arch
        self.machine, self.e_machine = ARCHES[arch]
        self.root = root
        self.sshd = sshd
        self.tmp = tmp
        # A private async dir in the root, so runs in parallel do not meet.
        self.async_dir_in_root = f"/root/.ansible_async_test_{uuid.uuid4().hex[:10]}"
        self.async_dir = root / self.async_dir_in_root.lstrip("/")

    def inventory(self, controller: str) -> Path:
        path = self.tmp / f"inventory-{controller}"
        path.write_text(
            f"{self.arch} ansible_host=127.0.0.1 ansible_port={self.sshd.port} ansible_user=root"
            f" ansible_ssh_private_key_file={self.sshd.key} ansible_python_interpreter=/usr/bin/python3"
            f" ansible_async_dir={self.async_dir_in_root}"
            " ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
        )
        return path

    def playbook(self, controller: str, library: Path, playbook: Path, *args: str, timeout=900):
        env = dict(
            os.environ,
            ANSIBLE_LIBRARY=str(library),
            ANSIBLE_LOCAL_TEMP=str(self.tmp / "local"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            ANSIBLE_HOST_KEY_CHECKING="0",
            ANSIBLE_SSH_RETRIES="2",
            ANSIBLE_TIMEOUT="60",
        )
        started = time.monotonic()
        run = subprocess.run(
            [str(CONTROLLERS[controller] / "ansible-playbook"), "-i", str(self.inventory(controller)),
             str(playbook), *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )
        sys.stdout.write(run.stdout[-30000:])
        sys.stderr.write(run.stderr[-5000:])
        sys.stdout.write(f"\n{playbook.name} on {self.arch}: {time.monotonic() - started:.1f} s\n")
        return run

    def jobs(self) -> dict:
        """The job files and logs left in the async dir, by name."""
        if not self.async_dir.is_dir():
            return {}
        return {p.name: p.read_text(errors="replace") for p in self.async_dir.iterdir() if p.is_file()}

    def programs(self) -> list:
        """The programs the launcher cached in the async dir's .bin/."""
        bin_dir = self.async_dir / ".bin"
        return sorted(bin_dir.iterdir()) if bin_dir.is_dir() else []

    def cleanup(self):
        shutil.rmtree(self.async_dir, ignore_errors=True)


def elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", f"{path} is not an ELF program"
    return int.from_bytes(head[18:20], "little")


class Roots:
    """The roots and their sshds, each built and started when a test first asks for it."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.ready, self.sshds, self.mounts = {}, [], []

    def __getitem__(self, arch: str):
        if arch not in self.ready:
            root = build_root(arch)
            proc = root / "proc"
            # The programs there read /proc (process identity, descriptors); a session's
            # chroot has none unless it is mounted.
            if not mounted(proc):
                subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
                self.mounts.append(proc)
            sshd = Sshd(root, self.tmp_path_factory.mktemp(f"sshd-{arch}"))
            self.sshds.append(sshd)
            self.ready[arch] = (root, sshd)
        return self.ready[arch]

    def close(self):
        for sshd in self.sshds:
            sshd.stop()
        for proc in self.mounts:
            subprocess.run(["umount", "-l", str(proc)], check=False)


@pytest.fixture(scope="session")
def foreign_roots(tmp_path_factory):
    """arch -> (root, sshd)."""
    if os.geteuid() != 0:
        pytest.skip("tests/foreign need root (debootstrap, binfmt_misc, chroot)")
    roots = Roots(tmp_path_factory)
    try:
        yield roots
    finally:
        roots.close()


@pytest.fixture
def foreign_host(request, foreign_roots, tmp_path):
    arch = request.param
    root, sshd = foreign_roots[arch]
    host = ForeignHost(arch, root, sshd, tmp_path)
    yield host
    host.cleanup()
