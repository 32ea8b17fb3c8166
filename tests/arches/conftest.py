"""Hosts of other architectures for tests/arches: Debian roots (build-root.sh) run through
qemu-user and binfmt_misc, each reached by ansible over SSH: a private sshd on a loopback
port whose sessions are chrooted into the root (`ChrootDirectory`), so the shell, python3,
gzip and uname ansible finds there are the root's own arm64 or armhf programs.

Needs root (debootstrap, binfmt_misc, chroot, mount). The roots are cached outside the
clone (see build-root.sh): the first run builds them (measured: see README).
"""

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness.controllers import controller
from harness.env import ansible_env
from harness.sshd import running_sshd

HERE = Path(__file__).resolve().parent
# Debian architecture -> what `uname -m` says there, and the ELF e_machine of its programs.
ARCHES = {"arm64": ("aarch64", 183), "armhf": ("armv7l", 40)}


def build_root(arch: str) -> Path:
    run = subprocess.run(["sh", str(HERE / "build-root.sh"), arch], stdout=subprocess.PIPE, text=True,
                         timeout=3000)
    assert run.returncode == 0, f"build-root.sh {arch} failed"
    return Path(run.stdout.strip().splitlines()[-1])


def mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


class ForeignHost:
    """One foreign root, reachable by ansible as host `name`."""

    def __init__(self, arch: str, root: Path, sshd, tmp: Path):
        self.arch = arch
        self.machine, self.e_machine = ARCHES[arch]
        self.root = root
        self.sshd = sshd
        self.tmp = tmp
        # A private async dir in the root, so runs in parallel do not meet.
        self.async_dir_in_root = f"/root/.ansible_async_test_{uuid.uuid4().hex[:10]}"
        self.async_dir = root / self.async_dir_in_root.lstrip("/")

    def inventory(self, version: str) -> Path:
        path = self.tmp / f"inventory-{version}"
        path.write_text(
            f"{self.arch} ansible_host=127.0.0.1 ansible_port={self.sshd.port} ansible_user=root"
            f" ansible_ssh_private_key_file={self.sshd.key} ansible_python_interpreter=/usr/bin/python3"
            f" ansible_async_dir={self.async_dir_in_root}"
            " ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
        )
        return path

    def playbook(self, version: str, library: Path, playbook: Path, *args: str, timeout=900):
        """Runs `playbook` on this host with the controller of ansible-core `version`."""
        env = ansible_env(
            ANSIBLE_LIBRARY=str(library),
            ANSIBLE_LOCAL_TEMP=str(self.tmp / "local"),
            ANSIBLE_HOST_KEY_CHECKING="0",
            ANSIBLE_SSH_RETRIES="2",
            ANSIBLE_TIMEOUT="60",
        )
        started = time.monotonic()
        run = subprocess.run(
            [str(controller(version, need_library=False).ansible_playbook), "-i", str(self.inventory(version)),
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


class Roots:
    """The roots and their sshds, each built and started when a test first asks for it."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.ready, self.mounts = {}, []
        self.sshds = contextlib.ExitStack()

    def __getitem__(self, arch: str):
        if arch not in self.ready:
            root = build_root(arch)
            proc = root / "proc"
            # The programs there read /proc (process identity, descriptors); a session's
            # chroot has none unless it is mounted.
            if not mounted(proc):
                subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
                self.mounts.append(proc)
            work = self.tmp_path_factory.mktemp(f"sshd-{arch}")
            # The launcher reads the kernel's architecture from /proc/sys/kernel/arch before it
            # asks uname: there, the emulated machine's (this machine's kernel runs qemu).
            kernel_arch = proc / "sys" / "kernel" / "arch"
            if kernel_arch.exists() and not mounted(kernel_arch):
                (work / "kernel-arch").write_text(ARCHES[arch][0] + "\n")
                subprocess.run(["mount", "--bind", str(work / "kernel-arch"), str(kernel_arch)], check=True)
                self.mounts.append(kernel_arch)
            sshd = self.sshds.enter_context(running_sshd(work, chroot=root))
            self.ready[arch] = (root, sshd)
        return self.ready[arch]

    def close(self):
        self.sshds.close()
        for mount in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(scope="session")
def foreign_roots(tmp_path_factory):
    """arch -> (root, sshd)."""
    if os.geteuid() != 0:
        pytest.skip("tests/arches need root (debootstrap, binfmt_misc, chroot)")
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
