"""Fixtures for tests/homedir: a private test user, a private sshd, the controllers."""

from __future__ import annotations

import pytest

import homedir_support
from harness.controllers import PROTOCOLS, controller as find_controller
from harness.sshd import running_sshd


@pytest.fixture(scope="session")
def sshd(world):
    """A private sshd (as tests/harness/ssh_fixtures.py's), with its files where the test user can read the
    authorized keys (sshd reads them as the user logging in)."""
    d = world / "sshd"
    d.mkdir(mode=0o755)
    with running_sshd(d) as server:
        (d / "authorized_keys").chmod(0o644)
        yield server


@pytest.fixture(params=PROTOCOLS, scope="session")
def controller(request):
    return find_controller(request.param)


@pytest.fixture(scope="session")
def world():
    """A folder every test user can reach, with the test user whose passwd home is in it."""
    with homedir_support.test_user() as base:
        yield base
