"""Helpers for tests/homedir: the test user, the isolated root async dir, the runs.

Nothing here writes to a real user's async dir: the test user `asynchome` is created for the
session with its passwd home in a temporary folder (and removed at the end), and the
local-connection runs execute in a private mount namespace where root's `~/.ansible_async` is a
temporary folder bind-mounted over the real one.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness.env import ansible_env
from harness.mounts import covered
from harness.paths import LIBRARY
from harness.procs import kill_all, pids_with_env
from harness.users import temp_user

USER = "asynchome"
ROOT_ASYNC = Path("/root/.ansible_async")
# Every scenario task carries HOMEDIR_TEST_MARK=MARK in its environment.
MARK = f"homedir-{os.getpid()}"
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "scenario.yml"


@contextlib.contextmanager
def test_user():
    """`asynchome`, whose passwd home is a fresh folder under a world-traversable base."""
    if os.geteuid() != 0:
        pytest.fail("tests/homedir run as root (they create a test user and sudo/su to it)")
    base = Path(tempfile.mkdtemp(prefix="homedir-", dir="/tmp"))
    base.chmod(0o755)
    try:
        with temp_user(USER, base / "home"):
            yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def user_dir(base: Path, name: str, mode: int = 0o755) -> Path:
    """A folder under `base` owned by the test user."""
    path = base / name
    path.mkdir(mode=mode, exist_ok=True)
    user = pwd.getpwnam(USER)
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def stock_library(controller, into: Path) -> Path:
    """ansible's own async_wrapper and async_status (the venvs hold stubs in their place)."""
    controller.stock_library(into)
    # Only so the playbook parses: its async_job tasks are skipped in stock runs.
    shutil.copy(LIBRARY / "async_job", into / "async_job")
    into.chmod(0o755)
    return into


def inventory(path: Path, hosts: dict[str, dict]) -> Path:
    path.write_text(json.dumps({"all": {"hosts": hosts}}, indent=2))  # JSON is YAML
    return path


def run(controller, inventory_path: Path, tmp: Path, library: Path, *, stock: bool, private_root: Path | None,
        label: str) -> dict[str, dict]:
    """Runs the scenario playbook once for every host of the inventory; returns each host's
    record. With `private_root`, the run happens in a mount namespace where root's
    ~/.ansible_async is `private_root`."""
    summary = tmp / f"summary-{label}"
    summary.mkdir()
    (tmp / "ansible.cfg").write_text("[defaults]\n")
    env = ansible_env(
        HOME=pwd.getpwuid(0).pw_dir,
        ANSIBLE_CONFIG=str(tmp / "ansible.cfg"),
        ANSIBLE_LIBRARY=str(library),
        ANSIBLE_LOCAL_TEMP=str(tmp / "local-tmp"),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_FORKS="12",
        ANSIBLE_PIPELINING="True",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp / "cp"),
        ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=30s",
        ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
    )
    extra = {"summary_dir": str(summary), "stock": stock, "mark": MARK,
             "controller_python": str(controller.bin / "python")}
    command = [str(controller.ansible_playbook), "-i", str(inventory_path), "-e", json.dumps(extra), str(PLAYBOOK)]
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        # Root's home holds the controller's Python, so only its ~/.ansible_async is covered
        # (tests/harness/sshd.py covers the ssh sessions' whole /root).
        if private_root is not None:
            command = [*stack.enter_context(covered(ROOT_ASYNC, private_root)), *command]
        proc = subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.monotonic() - started
    (tmp / f"run-{label}.log").write_text(f"$ {' '.join(command)}\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")
    print(f"===== {controller.version} {label} rc={proc.returncode} {seconds:.0f}s =====\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}")
    records = {}
    for host in json.loads(inventory_path.read_text())["all"]["hosts"]:
        record = summary / f"{host}.json"
        assert record.exists(), f"{host}: no record (rc {proc.returncode})\n{proc.stdout[-4000:]}"
        records[host] = json.loads(record.read_text())
    return records


def traces(roots: list[Path], jids: list[str]) -> list[Path]:
    """Files named after one of `jids` (job files, logs, temp files) anywhere under `roots`."""
    found = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if any(name == j or name.startswith(j + ".") or name.startswith("." + j + ".") for j in jids):
                    found.append(Path(dirpath) / name)
    return found


def kill_marked_jobs() -> None:
    """Ends whatever the scenario tasks started and left running (they carry MARK)."""
    kill_all(pids_with_env("HOMEDIR_TEST_MARK", MARK))
