"""Fixtures for async over a real OpenSSH server, with become, across a many-host inventory.

A private sshd (its own config, host key and client key, on a loopback address and a free high
port) runs for the whole session; every "host" of an inventory is that sshd, reached as root
with the generated key. Each test runs real `ansible-playbook` from the repo's controller venvs
(`.venv/core-2.19`, `.venv/core-2.21`) with this project's `library/` first in the module path.

Everything a test starts is stopped when it ends, pass or fail: the ssh connection masters
(ControlPersist) it left, and the async jobs it started (found by a marker that every playbook
puts into its tasks' environment). sshd is stopped at the end of the session by the pid in its
PidFile. tests/ssh/setup-host.sh installs the packages; the become users and their sudo rule
are the session's (tests/harness/become_users.py), removed at its end. The helpers are
in ssh_harness.py and the shared tests/harness (sshd, controllers, procfs, waiting, recap).
"""

from __future__ import annotations

import pytest

from harness.controllers import PROTOCOLS, controller as find_controller
from harness.sshd import running_sshd
from ssh_harness import Ansible, Timings


@pytest.fixture(scope="session", autouse=True)
def _become_users(test_users):
    """asyncuser and nohomeuser for the become tests, made for the session (tests/conftest.py)."""
    return test_users


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """The private sshd, for the whole session."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(params=PROTOCOLS, scope="session")
def controller(request):
    """Each test runs once per controller (ansible-core 2.19 and 2.21)."""
    return find_controller(request.param)


@pytest.fixture
def ansible(controller, sshd, tmp_path):
    """A test's sandbox for playbook runs; stops the test's jobs and connections at the end."""
    sandbox = Ansible(controller, sshd, tmp_path)
    try:
        yield sandbox
    finally:
        sandbox.stop_everything()


@pytest.fixture(scope="session")
def timings():
    """Scale-test wall times, also written to target/ssh-scale-timing.txt."""
    return Timings()
