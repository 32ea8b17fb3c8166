"""The two users the become tests run as, made for one pytest session and removed at its end:

- `asyncuser`, whose passwd home is a fresh folder of the session (not under /home);
- `nohomeuser`, whose passwd home (/nonexistent/nohomeuser) does not exist and cannot be made
  by that user (the fault test of an async dir that cannot be created needs it);

and a sudoers drop-in that lets root run anything as either without a password (ansible's
`become_method: sudo`), checked with `visudo` before it is put in place and removed with the
users. Needs root, sudo and visudo (`make ssh-host` installs them). Users of the same names
left by an earlier run (or an older setup script) are replaced."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .users import temp_user
from .wait import poll_until

ASYNC_USER = "asyncuser"
NOHOME_USER = "nohomeuser"
# Under a folder only root can write to: nohomeuser can never create it.
NOHOME_DIR = Path("/nonexistent") / NOHOME_USER
SUDOERS = Path("/etc/sudoers.d/ansible-async-tests")


@dataclass
class BecomeUsers:
    async_home: Path
    nohome_dir: Path = NOHOME_DIR


def _sudoers() -> None:
    text = (f"# Written by the ansible-async-rs tests (tests/harness/become_users.py) for one test run:\n"
            f"# root may run anything as the two test users without a password.\n"
            f"root ALL=({ASYNC_USER}, {NOHOME_USER}) NOPASSWD: ALL\n")
    fd, tmp = tempfile.mkstemp(dir=SUDOERS.parent, prefix=".ansible-async-tests.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o440)
        subprocess.run(["visudo", "-cqf", tmp], check=True)
        os.replace(tmp, SUDOERS)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def _nohome_user():
    subprocess.run(["userdel", NOHOME_USER], capture_output=True, check=False)
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(NOHOME_DIR), "--shell", "/bin/sh",
                    NOHOME_USER], check=True, capture_output=True)
    try:
        uid = int(subprocess.run(["id", "-u", NOHOME_USER], capture_output=True, text=True, check=True).stdout)
        yield uid
    finally:
        def none_left() -> bool:
            pids = procs.pids_of_user(uid)
            procs.kill_all(pids)
            return not pids

        poll_until(none_left, timeout=10)
        subprocess.run(["userdel", NOHOME_USER], capture_output=True, check=True)


@contextlib.contextmanager
def become_users():
    """Makes both users and the sudoers drop-in; yields a BecomeUsers; removes them all."""
    if os.geteuid() != 0:
        raise RuntimeError("the become tests make users: run them as root")
    # A folder every user may pass through (pytest's own tmp dirs are root's alone).
    base = Path(tempfile.mkdtemp(prefix="ansible-async-test-users-"))
    base.chmod(0o711)
    try:
        with temp_user(ASYNC_USER, base / ASYNC_USER, home_mode=0o755), _nohome_user():
            assert not os.path.exists(NOHOME_DIR), f"{NOHOME_DIR} exists: {NOHOME_USER} must have no home"
            _sudoers()
            try:
                for user in (ASYNC_USER, NOHOME_USER):
                    got = subprocess.run(["sudo", "-n", "-H", "-u", user, "/bin/sh", "-c", "id -un"],
                                         capture_output=True, text=True, timeout=30).stdout.strip()
                    assert got == user, f"sudo -u {user} runs as {got!r}: is /etc/sudoers.d included?"
                yield BecomeUsers(async_home=base / ASYNC_USER)
            finally:
                SUDOERS.unlink(missing_ok=True)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(base)], check=False)
