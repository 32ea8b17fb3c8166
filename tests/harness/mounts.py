"""A folder covered by another in a private mount namespace, without leaving a trace.

A bind mount needs a folder to cover. Where a test covers one of a real home's folders (root's
`~/.ansible_async`, which other runs on this machine may fill) and the folder does not exist,
it is made for the run and removed after it; while some namespace still covers it (another
run's, or a job of this one that outlives its command: removing it would unmount it there),
it is removed when the test session ends instead. A test leaves nothing behind."""

from __future__ import annotations

import atexit
import contextlib
import os
from pathlib import Path

# Mount points made here that were still covered when their block ended.
_LEFT: set[Path] = set()


@contextlib.contextmanager
def covered(target: Path, source: Path):
    """Yields the command prefix that runs a command in a private mount namespace where
    `target` shows `source`'s content; `target` is made when missing, and removed (empty: the
    command wrote into `source`) once the block ends."""
    made = not target.exists()
    if made:
        target.mkdir(mode=0o700)
    try:
        yield ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount --bind "$0" "$1" && shift && exec "$@"', str(source), str(target)]
    finally:
        if made:
            _LEFT.add(target)
            remove_left()


@atexit.register
def remove_left() -> None:
    """Removes the mount points made here that no namespace covers any more (empty ones only)."""
    for target in sorted(_LEFT):
        if not mounted_anywhere(target):
            with contextlib.suppress(OSError):
                target.rmdir()
            _LEFT.discard(target)


def mounted_anywhere(path: Path) -> bool:
    """Whether some process's mount namespace has a mount on `path`."""
    needle = " " + os.fspath(path).replace(" ", "\\040") + " "  # mountinfo escapes a space
    for mountinfo in Path("/proc").glob("[0-9]*/mountinfo"):
        try:
            if needle in mountinfo.read_text():
                return True
        except OSError:
            continue
    return False
