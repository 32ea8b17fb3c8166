"""A private OpenSSH server for a test session: its own config, host key and client key in a
folder of its own, on 127.0.0.1 (and other loopback addresses) at a free high port, key login
for root only; optionally every session chrooted into a root of another architecture. The
machine's own sshd is neither configured nor started.

It runs in a mount namespace of its own where root's home, /root, is a fresh folder of the
test's (`Sshd.root_home`): what the sessions write there (ansible's remote tmp, the async dirs
under `~`) never reaches the machine's real /root, and a root login runs no rc file of it (the
machine's pyenv set-up, whose lock a killed login could leave behind)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .wait import poll_until

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def port_open(address: str, port: int) -> bool:
    """Whether an SSH server answers there (its banner)."""
    try:
        with socket.create_connection((address, port), timeout=1) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def connection_pids(listener: int) -> list[int]:
    """The sshd processes below the sshd `listener`: one or two per connection, and no command
    a session runs. Killing them is what a network failure does: every connection is gone,
    and what the sessions started runs on until it sees its pipes closed. Not SIGKILLed in
    the middle of the login shell's start-up: root's rc files may take a lock there (pyenv's
    rehash does) that a killed shell never gives back, and every later login waits on it."""
    return [pid for pid in procs.descendants(listener) if procs.comm(pid).startswith("sshd")]


@dataclass
class Sshd:
    address: str
    port: int
    key: Path  # the client's private key, authorized for root
    pid_file: Path
    log: Path
    root_home: Path  # what the sessions see as /root
    pid: int = 0

    def session_pids(self) -> list[int]:
        """sshd's per-connection processes (and whatever runs below them)."""
        return procs.descendants(self.pid) if self.pid else []

    def kill_sessions(self) -> list[int]:
        """Drops every connection to this sshd at once, as a network failure would (see
        connection_pids); returns the pids it killed."""
        pids = connection_pids(self.pid) if self.pid else []
        procs.kill_all(pids)
        return pids

    def ssh(self, remote: str) -> list[str]:
        """The ssh command line that runs `remote` as root here, with the test's key."""
        return ["ssh", "-p", str(self.port), "-i", str(self.key), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                f"root@{self.address}", remote]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _config(address: str, port: int, host_key: Path, authorized: Path, pid_file: Path,
            more_addresses: tuple[str, ...], chroot: Path | None) -> str:
    sftp = "/usr/lib/openssh/sftp-server" if Path("/usr/lib/openssh/sftp-server").exists() else "internal-sftp"
    chroot_lines = ""
    if chroot is not None:
        # Every session runs inside the root; sftp (ansible's file transfer) in sshd itself.
        sftp = "internal-sftp"
        chroot_lines = f"ChrootDirectory {chroot}\n"
    listen = "".join(f"ListenAddress {a}\n" for a in (address, *more_addresses))
    return f"""\
# A test's private sshd: loopback only, key login for root, nothing else.
Port {port}
{listen}HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
# Many forks and no connection sharing: do not drop connections at start-up.
MaxStartups 500:30:1000
MaxSessions 200
MaxAuthTries 6
LoginGraceTime 60
ClientAliveInterval 0
PrintMotd no
PermitUserEnvironment no
LogLevel VERBOSE
{chroot_lines}Subsystem sftp {sftp}
"""


@contextlib.contextmanager
def running_sshd(d: Path, more_addresses: tuple[str, ...] = (), *, chroot: Path | None = None):
    """Starts a private sshd with its files in `d` and yields its Sshd; stops it (by its
    PidFile) on leaving. It listens on 127.0.0.1 and on `more_addresses` (other loopback
    addresses), same port. With `chroot`, every session runs inside that folder."""
    import pytest

    if os.geteuid() != 0:
        pytest.fail("a private sshd needs root (it logs in as root and sudoes to test users)")
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: run tests/harness/setup-ssh-host.sh (make ssh-host) first")
    d.mkdir(parents=True, exist_ok=True)
    host_key, key = d / "host_ed25519", d / "client_ed25519"
    for path in (host_key, key):
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "tests", "-f", str(path)],
                       check=True, capture_output=True)
    authorized = d / "authorized_keys"
    authorized.write_text(Path(str(key) + ".pub").read_text())
    authorized.chmod(0o600)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    address = "127.0.0.1"
    pid_file, log, config = d / "sshd.pid", d / "sshd.log", d / "sshd_config"
    root_home = d / "root-home"
    root_home.mkdir(mode=0o700, exist_ok=True)
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is missing: the private sshd runs in a mount namespace of its own")
    server = None
    for _attempt in range(5):  # the free port may be taken before sshd binds it
        port = free_port(address)
        config.write_text(_config(address, port, host_key, authorized, pid_file, more_addresses, chroot))
        subprocess.run([str(SSHD), "-t", "-f", str(config)], check=True)
        pid_file.unlink(missing_ok=True)
        # Foreground (-D) so the process is ours to wait for; it writes its PidFile all the same.
        # unshare and sh exec in turn: sshd keeps the pid Popen started, in its own namespace.
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                                 'mount --rbind "$1" /root && shift && exec "$@"', "sh", str(root_home),
                                 str(SSHD), "-D", "-f", str(config), "-E", str(log)],
                                stdin=subprocess.DEVNULL, start_new_session=True)
        poll_until(lambda: proc.poll() is not None or (pid_file.exists() and port_open(address, port)),
                   timeout=15)
        if proc.poll() is None and pid_file.exists():
            server = Sshd(address, port, key, pid_file, log, root_home, pid=int(pid_file.read_text().split()[0]))
            break
        proc.kill()
        proc.wait()
    if server is None:
        pytest.fail(f"sshd did not start:\n{log.read_text(errors='replace') if log.exists() else ''}")

    try:
        assert server.pid == proc.pid, (server.pid, proc.pid)
        # The key must really log in before any test runs.
        try:
            probe = subprocess.run(server.ssh("id -un"), capture_output=True, text=True, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail("ssh root@ id -un took over 60 s, past the login: root's shell start-up hangs (its rc "
                        "files? a lock a killed login left, such as pyenv's .pyenv-shim)\n"
                        + server.log_tail())
        assert probe.stdout.strip() == "root", f"ssh login failed: {probe.stderr}\n{server.log_tail()}"
        yield server
    finally:
        sessions = server.session_pids()
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = proc.pid
        # The connections first (see connection_pids), then what their sessions left running.
        procs.kill_all(connection_pids(pid))
        procs.kill_all([pid], signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        poll_until(lambda: not any(procs.is_alive(p) for p in sessions), timeout=10)
        procs.kill_all(sessions)
