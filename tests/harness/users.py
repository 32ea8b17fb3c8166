"""A throwaway user for one test or session, whose passwd home is a fresh folder: the default
async dir is under the passwd home whatever HOME says, so tests that need it make a user."""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from pathlib import Path

from . import procs
from .wait import poll_until


@contextlib.contextmanager
def temp_user(name: str, home: Path, *, home_mode: int = 0o700):
    """Makes user `name` with passwd home `home` (created, owned by the user) and yields its
    pwd entry; on leaving ends whatever the user still runs and removes the user. Needs root.
    The account is not locked (sshd refuses key logins to locked ones); no password works."""
    subprocess.run(["userdel", name], capture_output=True, check=False)  # left by a crashed run
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh", name],
                   check=True, capture_output=True)
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
    user = pwd.getpwnam(name)
    home.mkdir(mode=home_mode)
    home.chmod(home_mode)
    os.chown(home, user.pw_uid, user.pw_gid)
    try:
        yield user
    finally:
        # userdel refuses while the user runs anything: end what the tests left (by pid).
        def none_left() -> bool:
            pids = procs.pids_of_user(user.pw_uid)
            procs.kill_all(pids)
            return not pids

        poll_until(none_left, timeout=10)
        subprocess.run(["userdel", name], capture_output=True, check=True)
