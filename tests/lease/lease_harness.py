"""Helpers for tests/lease: playbook runs against the private sshd (ours and stock side by
side), the module's process group as procfs shows it, a TCP relay whose cut is a lost
connection, and the figures each scenario measured.

Every run has its own async dir, ControlPath dir (ssh's ControlPersist master) and a marker in
its play's environment, so that the test finds exactly its own processes on the host and ends
them when it is over, pass or fail."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness import procs
from harness.controllers import Controller
from harness.env import ansible_env
from harness.jobs import kill_jobs
from harness.paths import LIBRARY, REPO
from harness.wait import poll_until, wait_until

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE / "playbooks"
MARK_VAR = "LEASE_TEST_MARK"
# ansible's default ssh_args (less -C): connection sharing with a master that outlives the run.
SSH_ARGS = "-o ControlMaster=auto -o ControlPersist=60s"
HOST_PYTHON = "/usr/bin/python3"
FIGURES = REPO / "target" / "lease-figures.txt"


# --- the module's process group on the host -------------------------------------------------------

def pgid(pid: int) -> int | None:
    fields = procs.stat_fields(pid)
    return int(fields[2]) if fields else None


def group_members(group: int) -> list[int]:
    """Live processes (zombies aside) of process group `group`: a scan of the whole table."""
    return [p for p in procs.all_pids() if pgid(p) == group and procs.is_alive(p)]


@dataclass
class Group:
    """A module's process group, found by the command its module runs and the run's marker."""

    pgid: int
    members: list[int]

    def alive(self) -> bool:
        """Whether any process it had when found is still in the group (cheap enough to call
        every 20 ms: no scan of the process table)."""
        return any(procs.is_alive(p) and pgid(p) == self.pgid for p in self.members)

    def gone(self) -> bool:
        return not self.alive() and not group_members(self.pgid)

    def kill(self) -> None:
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        poll_until(lambda: not group_members(self.pgid), timeout=10)


def find_group(mark: str, command: str) -> Group | None:
    """The process group of the process that runs `command` (its whole command line) and
    carries `mark` in its environment, with the group's members now."""
    for pid in procs.pids_with_env(MARK_VAR, mark):
        if procs.cmdline(pid) == command and procs.is_alive(pid):
            group = pgid(pid)
            if group:
                return Group(group, group_members(group))
    return None


def wait_gone(group: Group, *, since: float, timeout: float) -> float | None:
    """Seconds from `since` (time.monotonic()) until the group was gone, or None when it still
    ran `timeout` seconds after `since`."""
    left = since + timeout - time.monotonic()
    if poll_until(lambda: not group.alive(), timeout=max(left, 0), interval=0.02):
        at = time.monotonic() - since
        # The members seen when it was found are gone; nothing else may be left in the group.
        wait_until(lambda: not group_members(group.pgid), timeout=5, what=f"process group {group.pgid} to empty")
        return at
    return None


# --- one ansible-playbook run against the sshd ----------------------------------------------------

class Run:
    """One controller run (ours or stock) against a port of the sshd, with dirs of its own."""

    def __init__(self, name: str, controller: Controller, tmp: Path, port: int, key: Path, *, stock: bool,
                 actions: bool = False):
        self.name = name
        # With the release's action plugins (action_plugins/async_status.py: the poll loop's
        # worker stops polling when its ansible-playbook is gone).
        self.actions = actions
        self.controller = controller
        self.stock = stock
        self.dir = tmp / name
        self.dir.mkdir()
        self.async_dir = self.dir / "async"
        self.mark = f"lease-{name}-{uuid.uuid4().hex[:12]}"
        # Short: the ControlPath socket must fit in sun_path (108 bytes).
        self.cp_dir = Path(tempfile.mkdtemp(prefix="lcp-", dir="/tmp"))
        self.library = controller.stock_library(self.dir / "stock-library") if stock else LIBRARY
        self.inventory = self.dir / "inventory"
        self.inventory.write_text(
            "target"
            f" ansible_host=127.0.0.1 ansible_port={port} ansible_user=root"
            f" ansible_ssh_private_key_file={key}"
            " ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"
            f" ansible_python_interpreter={HOST_PYTHON}"
            f" ansible_remote_tmp={self.dir / 'remote-tmp'}"
            f" ansible_async_dir={self.async_dir}\n")
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "ansible-playbook.log"

    def env(self) -> dict[str, str]:
        return ansible_env(
            ANSIBLE_CONFIG=str(self.dir / "ansible.cfg"),
            ANSIBLE_LIBRARY=str(self.library),
            ANSIBLE_LOCAL_TEMP=str(self.dir / "local-tmp"),
            ANSIBLE_HOST_KEY_CHECKING="False",
            ANSIBLE_PIPELINING="True",
            ANSIBLE_SSH_ARGS=SSH_ARGS,
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.cp_dir),
            ANSIBLE_SSH_RETRIES="0",
            ANSIBLE_TIMEOUT="10",
            ANSIBLE_DEPRECATION_WARNINGS="False",
            LEASE_TEST_RUN=self.mark,
        )

    def extra_vars(self, **more) -> Path:
        path = self.dir / "vars.json"
        path.write_text(json.dumps({"mark": self.mark, **more}))
        return path

    def command(self, playbook: str) -> list[str]:
        return [str(self.controller.ansible_playbook), "-i", str(self.inventory),
                "-e", f"@{self.dir / 'vars.json'}", str(PLAYBOOKS / playbook)]

    def write_config(self) -> None:
        actions = f"action_plugins = {REPO / 'action_plugins'}\n" if self.actions else ""
        (self.dir / "ansible.cfg").write_text(f"[defaults]\n{actions}")

    def start(self, playbook: str, **variables) -> subprocess.Popen:
        """ansible-playbook in a session (and process group) of its own, as a terminal's
        foreground job is: Ctrl-C is SIGINT to that group."""
        self.write_config()
        self.extra_vars(**variables)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.command(playbook), env=self.env(), cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self.proc

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # --- the job on the host

    def job_path(self) -> Path | None:
        """The run's one job file (each run starts one job in its own async dir)."""
        if not self.async_dir.is_dir():
            return None
        found = [p for p in self.async_dir.iterdir()
                 if p.is_file() and not p.name.startswith(".") and p.suffix != ".log"
                 and not p.name.endswith(".tmp")]
        return found[0] if len(found) == 1 else None

    def job(self) -> dict:
        path = self.job_path()
        text = path.read_text() if path else ""
        return json.loads(text) if text.strip() else {}

    def group(self, command: str) -> Group | None:
        return find_group(self.mark, command)

    def playbook_pids(self) -> list[int]:
        """This run's ansible-playbook processes: the main one and its workers (from
        ansible-core 2.19 on, each worker is in a session of its own)."""
        return [pid for pid in procs.pids_with_env("LEASE_TEST_RUN", self.mark)
                if "ansible-playbook" in procs.cmdline(pid) and procs.is_alive(pid)]

    # --- ending everything

    def stop(self) -> None:
        """Ends what this run left: ansible-playbook's group, its ssh masters, its jobs."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        procs.kill_all(self.playbook_pids())
        for sock in self.cp_dir.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                           capture_output=True, timeout=10, check=False)
        procs.kill_all(pid for pid, _ in procs.processes_matching(str(self.cp_dir)))
        for pid in procs.pids_with_env(MARK_VAR, self.mark):
            group = pgid(pid)
            if group and group > 1 and group != os.getpgid(0):
                try:
                    os.killpg(group, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        procs.kill_all(procs.pids_with_env(MARK_VAR, self.mark))
        procs.kill_all(procs.pids_with_env("LEASE_TEST_RUN", self.mark))
        kill_jobs(self.async_dir)
        shutil.rmtree(self.cp_dir, ignore_errors=True)

    def masters(self) -> list[int]:
        """This run's ssh ControlPersist masters (the `ssh: <path> [mux]` processes)."""
        return [pid for pid, line in procs.processes_matching(str(self.cp_dir)) if "[mux]" in line]


# --- a TCP relay in front of sshd: cutting it is losing the connection -------------------------------

class Relay:
    """Forwards 127.0.0.1:port to the sshd. cut() closes every relayed connection and the
    listening socket at once: both ends see the connection go, and new ones are refused, as
    when the network between controller and host goes down; restore() brings it back."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = 0
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self._listen()

    def _listen(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.is_cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def restore(self) -> None:
        """The network is back: the same port takes connections again."""
        with self.lock:
            self._listen()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.is_cut:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target))
                except OSError:
                    client.close()
                    continue
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self) -> None:
        with self.lock:
            self.is_cut = True
            cut, self.sockets = [self.listener, *self.sockets], []
            for s in cut:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


# --- the figures ------------------------------------------------------------------------------------

class Figures:
    """What each scenario measured, printed and written to target/lease-figures.txt."""

    def __init__(self):
        self.rows: list[str] = []
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        FIGURES.write_text("")

    def add(self, line: str) -> None:
        print(line)
        self.rows.append(line)
        with FIGURES.open("a") as f:
            f.write(line + "\n")
