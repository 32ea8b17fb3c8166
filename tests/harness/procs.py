"""The process table as procfs shows it: whether a process runs, what it runs, what it
carries in its environment, its descendants; and ending what a test left behind (the
processes of a test's jobs: jobs.kill_jobs).

Every reader returns an empty answer for a process that is gone (it may end at any time)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from its third field (the state) on: field N of proc(5) is [N - 3]."""
    stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
    return stat[stat.rindex(")") + 2:].split() if ")" in stat else []


def stat_field(pid: int, number: int) -> str:
    """Field `number` of /proc/PID/stat as proc(5) numbers them (3 state, 4 ppid, 5 pgrp,
    6 session); raises OSError when the process is gone."""
    fields = stat_fields(pid)
    if not fields:
        raise ProcessLookupError(pid)
    return fields[number - 3]


def is_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not count)."""
    fields = stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def ppid(pid: int) -> int | None:
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None


def cmdline(pid: int) -> str:
    """The command line, its arguments joined by spaces."""
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace").strip()


def comm(pid: int) -> str:
    """The process's name as the kernel keeps it (/proc/PID/comm: the program's, 15 bytes)."""
    return _read(f"/proc/{pid}/comm").decode(errors="replace").strip()


def environ(pid: int) -> dict[str, str]:
    env = {}
    for item in _read(f"/proc/{pid}/environ").split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def processes_matching(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of the processes (this one aside) whose command line holds `text`."""
    me = os.getpid()
    found = [(pid, cmdline(pid)) for pid in all_pids() if pid != me]
    return [(pid, line) for pid, line in found if text in line]


def pids_with_env(name: str, value: str) -> list[int]:
    """Processes (this one aside) whose environment sets `name` to `value`: a test's own jobs,
    when its tasks carry a marker."""
    me = os.getpid()
    return [pid for pid in all_pids() if pid != me and environ(pid).get(name) == value]


def pids_of_user(uid: int) -> list[int]:
    """Processes running as `uid`."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def descendants(root: int) -> list[int]:
    """Every process below `root` (children, their children...)."""
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


def kill_all(pids, sig: int = signal.SIGKILL) -> None:
    """Sends `sig` to each of `pids`; one that is gone already is no error."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

