"""Shared by every pytest suite here: the shared helpers' package (harness/) on the import
path, a way to run a playbook on localhost with this project's library/ with each of the
two controllers (`playbook`), the wrapper's implementations as library folders (`libraries`),
the become tests' users (`test_users`), and the private sshd's fixtures (harness/ssh_fixtures.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

# pytest's default import mode puts this folder on sys.path when it loads this conftest (tests/
# has no __init__.py); done here too, so that every suite's `import harness` works regardless.
TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from harness.controllers import PROTOCOLS, Controller, controller  # noqa: E402
from harness.env import ansible_env  # noqa: E402
from harness.paths import LIBRARY  # noqa: E402
from harness.become_users import become_users  # noqa: E402
from harness.recap import assert_recap_ok, parse_recap  # noqa: E402

# The private sshd and a test's sandbox of playbook runs over it (`sshd`, `ansible`, ...).
pytest_plugins = ["harness.ssh_fixtures"]


class PlaybookRun:
    """Runs playbooks with one controller against localhost, in a private sandbox."""

    def __init__(self, controller: Controller, tmp_path: Path):
        self.controller = controller
        self.tmp = tmp_path
        self.async_dir = tmp_path / "async"

    def __call__(self, playbook: Path, *args: str, host_vars: str = "", timeout: int = 300, check=True):
        inventory = self.tmp / "inventory"
        inventory.write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={self.controller.python}"
            f" ansible_async_dir={self.async_dir} {host_vars}\n"
        )
        env = ansible_env(
            ANSIBLE_LIBRARY=str(LIBRARY),
            ANSIBLE_LOCAL_TEMP=str(self.tmp / "local"),
            ANSIBLE_REMOTE_TEMP=str(self.tmp / "remote"),
        )
        run = subprocess.run(
            [str(self.controller.ansible_playbook), "-i", str(inventory), str(playbook), *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )
        sys.stdout.write(run.stdout[-20000:])
        sys.stderr.write(run.stderr[-5000:])
        if check:
            assert run.returncode == 0, f"ansible-playbook exited {run.returncode}"
            assert_recap_ok(parse_recap(run.stdout))
        return run


@pytest.fixture(scope="session")
def libraries(tmp_path_factory):
    """Each implementation of the wrapper as a library/ folder: {"native": library/ as make
    build writes it, "fallback": one whose async_wrapper can only take the portable fallback
    (harness/fallback-library.sh; async_status and async_job as built)}."""
    fallback = tmp_path_factory.mktemp("fallback-library")
    subprocess.run(["sh", str(Path(TESTS) / "harness" / "fallback-library.sh"), str(fallback)], check=True)
    return {"native": LIBRARY, "fallback": fallback}


@pytest.fixture(params=PROTOCOLS)
def playbook(request, tmp_path):
    """Runs a playbook with each controller in turn (ansible-core 2.19 and 2.21)."""
    return PlaybookRun(controller(request.param), tmp_path)


@pytest.fixture(scope="session")
def test_users():
    """The become tests' users (asyncuser, with a home of the session's; nohomeuser, with none)
    and their sudo rule: made once for the session, removed at its end."""
    with become_users() as users:
        yield users
