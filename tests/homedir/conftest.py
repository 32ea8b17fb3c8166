"""Fixtures for tests/homedir: a private test user, the tests/ssh sshd, the controllers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ssh"))

import ssh_harness  # noqa: E402
from ssh_harness import CONTROLLERS  # noqa: E402

import homedir_support  # noqa: E402


@pytest.fixture(scope="session")
def sshd(world):
    """tests/ssh's private sshd, with its files where the test user can read the authorized
    keys (sshd reads them as the user logging in)."""
    d = world / "sshd"
    d.mkdir(mode=0o755)
    with ssh_harness.running_sshd(d) as server:
        (d / "authorized_keys").chmod(0o644)
        yield server


@pytest.fixture(params=sorted(CONTROLLERS), scope="session")
def controller(request):
    return ssh_harness.controller(request.param)


@pytest.fixture(scope="session")
def world():
    """A folder every test user can reach, with the test user whose passwd home is in it."""
    with homedir_support.test_user() as base:
        yield base
