"""Fixtures for playbooks run over a real OpenSSH server (a pytest plugin: tests/conftest.py
loads it, so any suite's test can ask for them; tests/tasks and tests/polling do).

A private sshd (its own config, host key and client key, on a loopback address and a free high
port) runs for the whole session, started by the first test that asks for it; every "host" of
an inventory is that sshd, reached as root with the generated key. Each test runs real
`ansible-playbook` from the repo's controller venvs with this project's `library/` first in the
module path, and finds a playbook named without a folder in its own folder's `playbooks/`.

Everything a test starts is stopped when it ends, pass or fail: the ssh connection masters
(ControlPersist) it left, and the async jobs it started (found by a marker that every playbook
puts into its tasks' environment). sshd is stopped at the end of the session by the pid in its
PidFile. `make ssh-host` (harness/setup-ssh-host.sh) installs the packages; the become users
and their sudo rule are the session's (`test_users`, tests/conftest.py), removed at its end.
"""

from __future__ import annotations

import pytest

from harness.controllers import PROTOCOLS, controller as find_controller
from harness.sshd import running_sshd
from harness.ssh_sandbox import Ansible, Timings


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """The private sshd, for the whole session."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(params=PROTOCOLS, scope="session")
def ssh_controller(request):
    """A test of `ansible` runs once per controller (ansible-core 2.19 and 2.21)."""
    return find_controller(request.param)


@pytest.fixture
def ansible(ssh_controller, sshd, tmp_path, request, test_users):
    """A test's sandbox for playbook runs (the become users made for the session); stops the
    test's jobs and connections at the end."""
    sandbox = Ansible(ssh_controller, sshd, tmp_path, playbooks=request.path.parent / "playbooks")
    try:
        yield sandbox
    finally:
        sandbox.stop_everything()


@pytest.fixture(scope="session")
def timings():
    """Scale-test wall times, also written to target/ssh-scale-timing.txt."""
    return Timings()
