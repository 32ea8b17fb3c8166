"""Helpers for tests/ssh: the private sshd, the controllers, playbook runs and process checks.
The fixtures that use them are in conftest.py."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LIBRARY = REPO / "library"
PLAYBOOKS = HERE / "playbooks"
CONTROLLERS = {
    "2.19": REPO / ".venv" / "core-2.19" / "bin",
    "2.21": REPO / ".venv" / "core-2.21" / "bin",
}
SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
# The name of the environment variable every playbook here sets on its tasks (play-level
# `environment:`): async jobs inherit it, so a test can find (and stop) exactly its own jobs.
MARK_VAR = "ASYNC_SSH_TEST_MARK"
# Connection sharing on (ansible's default ssh_args, less `-C`: compressing loopback traffic only
# costs CPU) or off (every task its own connection).
SSH_ARGS_SHARED = "-o ControlMaster=auto -o ControlPersist=60s"
SSH_ARGS_UNSHARED = "-o ControlMaster=no"


# --- processes ----------------------------------------------------------------------------------

def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace").strip()


def environ(pid: int) -> dict[str, str]:
    env = {}
    for item in _read(f"/proc/{pid}/environ").split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def ppid(pid: int) -> int | None:
    stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
    try:
        return int(stat[stat.rindex(")") + 2:].split()[1])
    except (ValueError, IndexError):
        return None


def is_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not count)."""
    stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
    if not stat:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] not in ("Z", "X")


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        parent = ppid(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def marked_pids(mark: str) -> list[int]:
    """Processes that carry this test's marker in their environment (its async jobs)."""
    me = os.getpid()
    return [pid for pid in all_pids() if pid != me and environ(pid).get(MARK_VAR) == mark]


def async_wrapper_pids(mark: str) -> list[int]:
    """`pgrep -f async_wrapper`, narrowed to the processes of this test (other suites may run
    jobs on this machine at the same time)."""
    run = subprocess.run(["pgrep", "-f", "async_wrapper"], capture_output=True, text=True, check=False)
    pids = [int(p) for p in run.stdout.split()]
    return [p for p in pids if environ(p).get(MARK_VAR) == mark and is_alive(p)]


def kill_all(pids, sig=signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- the private sshd ---------------------------------------------------------------------------

def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class Sshd:
    address: str
    port: int
    key: Path  # the client's private key, authorized for root
    pid_file: Path
    log: Path
    pid: int = 0

    def session_pids(self) -> list[int]:
        """sshd's per-connection processes (and whatever runs below them)."""
        return descendants(self.pid) if self.pid else []

    def kill_sessions(self) -> list[int]:
        """Drops every connection to this sshd at once, as a network failure would."""
        pids = self.session_pids()
        kill_all(pids)
        return pids

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _sshd_config(d: Path, address: str, port: int, host_key: Path, authorized: Path, pid_file: Path,
                 more_addresses: tuple[str, ...] = ()) -> str:
    sftp = "/usr/lib/openssh/sftp-server" if Path("/usr/lib/openssh/sftp-server").exists() else "internal-sftp"
    listen = "".join(f"ListenAddress {a}\n" for a in (address, *more_addresses))
    return f"""\
# Private sshd for tests/ssh: loopback only, key login for root, nothing else.
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
Subsystem sftp {sftp}
"""


@contextlib.contextmanager
def running_sshd(d: Path, more_addresses: tuple[str, ...] = ()):
    """Starts a private sshd with its files in `d`; stops it (by its PidFile) on leaving. It
    listens on 127.0.0.1 and on `more_addresses` (other loopback addresses), same port."""
    if os.geteuid() != 0:
        pytest.fail("tests/ssh run as root (they start sshd and sudo to test users)")
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: run tests/ssh/setup-host.sh first")
    host_key, key = d / "host_ed25519", d / "client_ed25519"
    for path in (host_key, key):
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "tests/ssh", "-f", str(path)],
                       check=True, capture_output=True)
    authorized = d / "authorized_keys"
    authorized.write_text(Path(str(key) + ".pub").read_text())
    authorized.chmod(0o600)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    address = "127.0.0.1"
    pid_file, log, config = d / "sshd.pid", d / "sshd.log", d / "sshd_config"
    server = None
    for _attempt in range(5):
        port = free_port(address)
        config.write_text(_sshd_config(d, address, port, host_key, authorized, pid_file, more_addresses))
        subprocess.run([str(SSHD), "-t", "-f", str(config)], check=True)
        pid_file.unlink(missing_ok=True)
        # Foreground (-D) so the process is ours to wait for; it writes its PidFile all the same.
        proc = subprocess.Popen([str(SSHD), "-D", "-f", str(config), "-E", str(log)],
                                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            if pid_file.exists() and port_open(address, port):
                break
            time.sleep(0.05)
        if proc.poll() is None and pid_file.exists():
            server = Sshd(address, port, key, pid_file, log, pid=int(pid_file.read_text().split()[0]))
            break
        proc.kill()
        proc.wait()
    if server is None:
        pytest.fail(f"sshd did not start:\n{log.read_text(errors='replace') if log.exists() else ''}")

    try:
        assert server.pid == proc.pid, (server.pid, proc.pid)
        # The key must really log in before any test runs.
        probe = subprocess.run(
            ["ssh", "-p", str(server.port), "-i", str(key), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
             f"root@{address}", "id -un"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert probe.stdout.strip() == "root", f"ssh login failed: {probe.stderr}\n{server.log_tail()}"
        yield server
    finally:
        sessions = server.session_pids()
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = proc.pid
        kill_all([pid], signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        kill_all(sessions)


# --- controllers and playbook runs --------------------------------------------------------------

def _python_for_hosts(controller_bin: Path) -> str:
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else str(controller_bin / "python")


@dataclass
class Controller:
    version: str
    bin: Path

    @property
    def ansible_playbook(self) -> Path:
        return self.bin / "ansible-playbook"

    def stock_module_source(self, name: str) -> Path | None:
        """ansible's own module `name` (async_wrapper, async_status): the `.py.orig` the venv
        set-up kept, or the module itself when it was not replaced by a stub."""
        run = subprocess.run(
            [str(self.bin / "python"), "-c", "import ansible.modules, os; print(os.path.dirname(ansible.modules.__file__))"],
            capture_output=True, text=True, check=True,
        )
        modules = Path(run.stdout.strip())
        for candidate in (modules / f"{name}.py.orig", modules / f"{name}.py"):
            if candidate.exists() and "STUB installed by" not in candidate.read_text(errors="replace"):
                return candidate
        return None


def controller(version: str) -> Controller:
    c = Controller(version, CONTROLLERS[version])
    if not c.ansible_playbook.exists():
        pytest.fail(f"{c.ansible_playbook} is missing: run tests/setup-venvs.sh (make venvs)")
    for name in ("async_wrapper", "async_status"):
        if not (LIBRARY / name).exists():
            pytest.fail(f"library/{name} is missing: run make build")
    return c


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    def assert_ok(self, hosts: int | None = None, allow_ignored: bool = True) -> None:
        assert self.rc == 0, f"ansible-playbook exited {self.rc}"
        assert self.recap, "no PLAY RECAP in the output"
        if hosts is not None:
            assert len(self.recap) == hosts, sorted(self.recap)
        for host, counts in self.recap.items():
            assert counts["failed"] == 0 and counts["unreachable"] == 0, (host, counts)
            if not allow_ignored:
                assert counts.get("ignored", 0) == 0, (host, counts)


RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$")


def parse_recap(stdout: str) -> dict[str, dict[str, int]]:
    recap: dict[str, dict[str, int]] = {}
    lines = stdout.splitlines()
    try:
        start = max(i for i, line in enumerate(lines) if line.startswith("PLAY RECAP"))
    except ValueError:
        return recap
    for line in lines[start + 1:]:
        m = RECAP_LINE.match(line.strip())
        if m:
            recap[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return recap


class Ansible:
    """One test's sandbox: inventories, controller dirs and playbook runs against the sshd."""

    def __init__(self, controller: Controller, sshd: Sshd, tmp_path: Path):
        self.controller = controller
        self.sshd = sshd
        self.tmp = tmp_path
        self.mark = f"ssh-{uuid.uuid4().hex[:16]}"
        # Short: ssh's ControlPath sockets must fit in sun_path (108 bytes).
        self.cp_dir = Path(tempfile.mkdtemp(prefix="asc-", dir="/tmp"))
        self.remote_tmp = tmp_path / "remote-tmp"
        self.async_dir = tmp_path / "async"
        self.runs = 0
        (tmp_path / "ansible.cfg").write_text("[defaults]\n")

    def inventory(self, hosts: int = 1, name: str = "inventory", **host_vars) -> Path:
        """N hosts h01..hNN, all this session's sshd, as root with the generated key."""
        width = max(2, len(str(hosts)))
        python = _python_for_hosts(self.controller.bin)
        lines = ["[targets]"]
        for n in range(1, hosts + 1):
            host = f"h{n:0{width}d}"
            entries = {
                "ansible_host": self.sshd.address,
                "ansible_port": self.sshd.port,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": self.sshd.key,
                "ansible_ssh_common_args": "'-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'",
                "ansible_python_interpreter": python,
                "ansible_remote_tmp": self.remote_tmp,
                # One connection (master) per inventory host, though all are the same sshd.
                "ansible_control_path": f"%(directory)s/{host}",
                **host_vars,
            }
            lines.append(host + " " + " ".join(f"{k}={v}" for k, v in entries.items()))
        path = self.tmp / name
        path.write_text("\n".join(lines) + "\n")
        return path

    def env(self, pipelining: bool, shared: bool, forks: int, library: Path) -> dict[str, str]:
        env = dict(os.environ)
        for key in list(env):
            if key.startswith("ANSIBLE_"):
                del env[key]
        env.update(
            ANSIBLE_CONFIG=str(self.tmp / "ansible.cfg"),
            ANSIBLE_LIBRARY=str(library),
            ANSIBLE_LOCAL_TEMP=str(self.tmp / "local-tmp"),
            ANSIBLE_HOST_KEY_CHECKING="False",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            ANSIBLE_FORKS=str(forks),
            ANSIBLE_PIPELINING="True" if pipelining else "False",
            ANSIBLE_SSH_ARGS=SSH_ARGS_SHARED if shared else SSH_ARGS_UNSHARED,
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.cp_dir),
            ANSIBLE_SSH_RETRIES="2",
            ANSIBLE_TIMEOUT="30",
            ANSIBLE_DEPRECATION_WARNINGS="False",
            ANSIBLE_PYTHON_INTERPRETER=_python_for_hosts(self.controller.bin),
        )
        return env

    def run(self, playbook: str, inventory: Path, *, pipelining: bool = False, shared: bool = True,
            forks: int = 5, library: Path = LIBRARY, timeout: int = 300, extra_vars: dict | None = None,
            args: tuple = ()) -> Result:
        self.runs += 1
        variables = {
            "ssh_test_mark": self.mark,
            "test_tmp": str(self.tmp),
            "test_async_dir": str(self.async_dir),
            **(extra_vars or {}),
        }
        vars_file = self.tmp / f"vars-{self.runs}.json"
        vars_file.write_text(json.dumps(variables))
        command = [str(self.controller.ansible_playbook), "-i", str(inventory), "-e", f"@{vars_file}",
                   *args, str(PLAYBOOKS / playbook)]
        start = time.monotonic()
        try:
            proc = subprocess.run(command, env=self.env(pipelining, shared, forks, library), cwd=self.tmp,
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            sys.stdout.write(out[-20000:])
            raise AssertionError(f"ansible-playbook {playbook} did not finish in {timeout}s") from None
        seconds = time.monotonic() - start
        log = self.tmp / f"run-{self.runs}-{Path(playbook).stem}.log"
        log.write_text(f"$ {' '.join(command)}\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")
        sys.stdout.write(f"\n===== {self.controller.version} {playbook} rc={proc.returncode} "
                         f"{seconds:.1f}s (log: {log}) =====\n")
        sys.stdout.write(proc.stdout[-15000:])
        if proc.stderr.strip():
            sys.stdout.write("--- stderr ---\n" + proc.stderr[-5000:])
        return Result(proc.returncode, proc.stdout, proc.stderr, seconds, parse_recap(proc.stdout))

    def stop_connections(self) -> None:
        """Closes the ssh connection masters (ControlPersist) this test's runs left."""
        for sock in self.cp_dir.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                           capture_output=True, timeout=10, check=False)
        kill_all([p for p in all_pids() if str(self.cp_dir) in cmdline(p)])

    def stop_everything(self) -> None:
        """Ends this test's jobs and ssh connection masters, whatever state the test left."""
        kill_all(marked_pids(self.mark))
        self.stop_connections()
        shutil.rmtree(self.cp_dir, ignore_errors=True)


def home_of(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def require_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        pytest.fail(f"user {user} is missing: run tests/ssh/setup-host.sh first")


class Timings:
    """Scale-test wall times, written to target/ssh-scale-timing.txt as they come."""

    path = REPO / "target" / "ssh-scale-timing.txt"

    def __init__(self):
        self.rows: list[str] = []

    def add(self, line: str) -> None:
        print(line)
        self.rows.append(line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(self.rows) + "\n")

