"""Fixtures of the end-to-end tests: every test runs once per controller (ansible-core 2.19 and
2.21, the two async_wrapper protocols). The helpers and the environment knobs are in
tasks_support.py (a module of its own: several conftest.py files live in this repo)."""

from __future__ import annotations

import pytest
from tasks_support import CONTROLLERS, NATIVE, VENV_DIR, Play
from harness.controllers import Controller
from harness.controllers import controller as find_controller


@pytest.fixture(params=CONTROLLERS, ids=lambda v: f"core-{v}")
def controller(request) -> Controller:
    return find_controller(request.param, VENV_DIR, need_library=NATIVE)


@pytest.fixture
def play(controller, tmp_path) -> Play:
    """Runs playbooks with `controller`, in this test's own temp dirs."""
    return Play(controller, tmp_path)
