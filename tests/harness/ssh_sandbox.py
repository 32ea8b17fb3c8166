"""A test's sandbox of playbook runs against the private sshd (harness/sshd.py), and what a
test looks for in the process table. The fixtures that use them are in ssh_fixtures.py.
tests/bench/ssh_bench.py uses this module too (LIBRARY, running_sshd, controller, Ansible)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.controllers import Controller, controller  # noqa: F401 (ssh_bench)
from harness.env import ansible_env
from harness.paths import LIBRARY, REPO
from harness.procs import environ, is_alive, kill_all, pids_with_env, processes_matching
from harness.recap import assert_recap_ok, parse_recap
from harness.sshd import Sshd, running_sshd  # noqa: F401 (ssh_bench)

# The name of the environment variable every playbook here sets on its tasks (play-level
# `environment:`): async jobs inherit it, so a test can find (and stop) exactly its own jobs.
MARK_VAR = "ASYNC_SSH_TEST_MARK"
# Connection sharing on (ansible's default ssh_args, less `-C`: compressing loopback traffic only
# costs CPU) or off (every task its own connection).
SSH_ARGS_SHARED = "-o ControlMaster=auto -o ControlPersist=60s"
SSH_ARGS_UNSHARED = "-o ControlMaster=no"
# With ASYNC_SSH_STOCK set, some tests also run ansible's stock modules to compare with
# (=all: on both controllers); see stock_library.
STOCK = os.environ.get("ASYNC_SSH_STOCK", "")


# --- this test's processes ------------------------------------------------------------------------

def marked_pids(mark: str) -> list[int]:
    """Processes that carry this test's marker in their environment (its async jobs)."""
    return pids_with_env(MARK_VAR, mark)


def async_wrapper_pids(mark: str) -> list[int]:
    """`pgrep -f async_wrapper`, narrowed to the processes of this test (other suites may run
    jobs on this machine at the same time)."""
    run = subprocess.run(["pgrep", "-f", "async_wrapper"], capture_output=True, text=True, check=False)
    pids = [int(p) for p in run.stdout.split()]
    return [p for p in pids if environ(p).get(MARK_VAR) == mark and is_alive(p)]


# --- controllers and playbook runs --------------------------------------------------------------

def _python_for_hosts(controller_bin: Path) -> str:
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else str(controller_bin / "python")


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    def assert_ok(self, hosts: int | None = None, allow_ignored: bool = True) -> None:
        assert self.rc == 0, f"ansible-playbook exited {self.rc}"
        assert_recap_ok(self.recap, hosts=hosts, allow_ignored=allow_ignored)


class Ansible:
    """One test's sandbox: inventories, controller dirs and playbook runs against the sshd."""

    def __init__(self, controller: Controller, sshd: Sshd, tmp_path: Path, playbooks: Path | None = None):
        self.controller = controller
        # Where a playbook named without a folder is (the test's own playbooks/).
        self.playbooks = playbooks
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
        return ansible_env(
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

    def run(self, playbook: str | Path, inventory: Path, *, pipelining: bool = False, shared: bool = True,
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
                   *args, str(self.playbook_path(playbook))]
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

    def playbook_path(self, playbook: str | Path) -> Path:
        """A playbook given by its path, or by its name in `playbooks`."""
        path = Path(playbook)
        if path.is_absolute() or self.playbooks is None:
            return path
        return self.playbooks / path

    def stop_connections(self) -> None:
        """Closes the ssh connection masters (ControlPersist) this test's runs left."""
        for sock in self.cp_dir.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                           capture_output=True, timeout=10, check=False)
        kill_all(pid for pid, _ in processes_matching(str(self.cp_dir)))

    def stop_everything(self) -> None:
        """Ends this test's jobs and ssh connection masters, whatever state the test left."""
        kill_all(marked_pids(self.mark))
        self.stop_connections()
        shutil.rmtree(self.cp_dir, ignore_errors=True)


def stock_library(ansible: Ansible, dirname: str = "stock-library") -> Path:
    """A library dir with ansible's own async_wrapper and async_status (ahead of the stubs that
    replace them inside the venv)."""
    library = ansible.tmp / dirname
    library.mkdir()
    return ansible.controller.stock_library(library)


def home_of(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def require_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        pytest.fail(f"user {user} is missing: the session's test_users fixture makes it")


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

