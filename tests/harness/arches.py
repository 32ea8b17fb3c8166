"""The architectures the program is built for: crates/ansible-async/arches, the one list (the
Makefile, assemble.sh and the tests all read it)."""

from __future__ import annotations

import platform

from harness.paths import REPO

ARCH_LIST = REPO / "crates" / "ansible-async" / "arches"


def _read() -> dict[str, tuple[tuple[str, ...], str]]:
    arches = {}
    for line in ARCH_LIST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, spellings, target = line.split()
            arches[name] = (tuple(spellings.split("|")), target)
    return arches


# name -> (the `uname -m` spellings it answers to, its Rust target), in the list's order: the
# order of the programs at the end of library/async_wrapper.
ARCHES = _read()
# The architecture whose program runs on this machine (None: none does).
HOST_ARCH = next((name for name, (spellings, _) in ARCHES.items() if platform.machine() in spellings), None)
