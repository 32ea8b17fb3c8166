"""The controllers: one venv per ansible-core minor, made by tests/setup-venvs.sh (`make venvs`)
as .venv/core-<version>, each with the stock async modules stubbed (stubs.py).

Most suites run with PROTOCOLS, one controller per async_wrapper protocol: 2.19 (module and
arguments file) and 2.21 (the whole command). tests/matrix runs every one of VERSIONS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import stubs
from .paths import LIBRARY, REPO

VENV_DIR = REPO / ".venv"
VERSIONS = ("2.14", "2.15", "2.16", "2.17", "2.18", "2.19", "2.20", "2.21")
PROTOCOLS = ("2.19", "2.21")


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
    return sorted(found, key=lambda c: tuple(int(n) for n in c.version.split(".")))


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
