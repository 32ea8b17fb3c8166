"""Fixtures of the end-to-end tests: every test runs once per controller (ansible-core 2.19 and
2.21, the two async_wrapper protocols). The helpers and the environment knobs are in
e2e_support.py (a module of its own: several conftest.py files live in this repo)."""

from __future__ import annotations

import pytest
from e2e_support import CONTROLLERS, VENV_DIR, Controller, Play


@pytest.fixture(params=CONTROLLERS, ids=lambda v: f"core-{v}")
def controller(request) -> Controller:
    venv = VENV_DIR / f"core-{request.param}"
    if not (venv / "bin" / "ansible-playbook").exists():
        pytest.fail(f"controller venv {venv} is missing: run `make venvs` (tests/setup-venvs.sh)")
    return Controller(request.param, venv)


@pytest.fixture
def play(controller, tmp_path) -> Play:
    """Runs playbooks with `controller`, in this test's own temp dirs."""
    return Play(controller, tmp_path)
