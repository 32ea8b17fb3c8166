"""The controllers: one venv per ansible-core minor, made by tests/setup-venvs.sh (`make venvs`)
as .venv/core-<version>, each with the stock async modules stubbed (stubs.py). The list is
tests/controllers.txt, the one place that names the versions and their pins (the set-up script
reads it too).

Most suites run with PROTOCOLS, one controller per async_wrapper protocol: 2.19 (module and
arguments file) and 2.21 (the whole command). tests/tasks/test_controllers.py and tests/release run every one of
VERSIONS."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import stubs
from .paths import LIBRARY, REPO, TESTS

VENV_DIR = REPO / ".venv"
CONTROLLER_LIST = TESTS / "controllers.txt"


def version_key(version: str) -> tuple[int, ...]:
    """Sorts "2.9" before "2.14"; a pre-release ("2.22.0rc1") by its first three numbers."""
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])


def read_list(path: Path = CONTROLLER_LIST) -> dict[str, str]:
    """minor version -> the exact ansible-core version pinned, from the list's
    `core-<minor> python pins...` lines (comments and blank lines aside), oldest first."""
    pinned = {}
    for line in path.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        name, _python, *pins = words
        core = [p.split("==", 1)[1] for p in pins if p.startswith("ansible-core==")]
        if not name.startswith("core-") or len(core) != 1:
            raise ValueError(f"{path}: not `core-<minor> python ansible-core==<version> ...`: {line!r}")
        pinned[name.removeprefix("core-")] = core[0]
    return dict(sorted(pinned.items(), key=lambda item: version_key(item[0])))


PINNED = read_list()
VERSIONS = tuple(PINNED)
PROTOCOLS = ("2.19", "2.21")
assert set(PROTOCOLS) <= set(VERSIONS), (PROTOCOLS, CONTROLLER_LIST)


@dataclass(frozen=True)
class Controller:
    version: str
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def ansible_playbook(self) -> Path:
        return self.bin / "ansible-playbook"

    def stock_module_source(self, name: str) -> Path | None:
        """ansible's own module `name` in this venv (the `.py.orig` beside the stub)."""
        return stubs.stock_module_source(self.python, name)

    @property
    def pinned(self) -> str:
        """The exact ansible-core version of this controller's venv (e.g. "2.22.0rc1")."""
        return PINNED[self.venv.name.removeprefix("core-")]

    def stock_library(self, into: Path) -> Path:
        """A library folder with ansible's own async_wrapper.py and async_status.py."""
        return stubs.stock_library(self.python, into)


def versions_from_env(variable: str, default=PROTOCOLS) -> list[str]:
    """The versions a comma-separated environment variable names, or `default`."""
    return [v.strip() for v in os.environ.get(variable, ",".join(default)).split(",") if v.strip()]


def installed(venv_dir: Path = VENV_DIR) -> list[Controller]:
    """Every controller venv there is, oldest first."""
    found = [Controller(p.parents[1].name.removeprefix("core-"), p.parents[1])
             for p in venv_dir.glob("core-*/bin/ansible-playbook")]
    return sorted(found, key=lambda c: version_key(c.version))


def controller(version: str, venv_dir: Path = VENV_DIR, *, venv: str | None = None,
               need_library: bool = True) -> Controller:
    """The controller of ansible-core `version` (from the venv of version `venv`, when given);
    fails the test when the venv, or (`need_library`) the built library, is missing."""
    import pytest

    found = Controller(version, venv_dir / f"core-{venv or version}")
    if not found.ansible_playbook.exists():
        pytest.fail(f"controller venv {found.venv} is missing: run `make venvs` (tests/setup-venvs.sh)")
    for name in ("async_wrapper", "async_status") if need_library else ():
        if not (LIBRARY / name).exists():
            pytest.fail(f"library/{name} is missing: run `make build`")
    return found
