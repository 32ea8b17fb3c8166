"""Every controller of tests/controllers.txt (one ansible-core per minor, 2.14 on) against this
project's library/: real playbooks on localhost, two runs per controller (playbooks/controllers.yml,
and playbooks/controllers_check.yml with --check).

Each playbook asserts what ansible reported; this side checks the run's recap and what is left
in the async dir: the job logs only this project's wrapper writes (so our programs ran; the
venvs' stock modules are stubs that fail loudly anyway), the wrapper protocol each version
speaks, the junk warnings each version gives, and gather_facts' facts modules running with a
time limit of 0 and not being ended by it.

MATRIX_CONTROLLERS=2.14,2.22 runs only those (default: all). The venvs come from
tests/setup-venvs.sh (`make venvs`).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.controllers import VERSIONS, controller, versions_from_env
from harness.env import ansible_env
from harness.paths import LIBRARY
from harness.recap import assert_recap_ok, parse_recap

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
# The playbooks' own module (matrix_output), beside the e2e ones.
MODULES = Path(__file__).resolve().parent / "modules"
CALLBACKS = LIBRARY.parent / "callback_plugins"
CONTROLLERS = versions_from_env("MATRIX_CONTROLLERS", VERSIONS)
# The host's own python runs the modules, as on a managed host (the become user cannot reach a venv).
TARGET_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
BECOME_USER = "asyncuser"  # the session's (tests/conftest.py `test_users`), with sudo for root
JUNK = "Module invocation had junk after the JSON data: "


def minor(version: str) -> tuple[int, int]:
    major, minor_ = version.split(".")[:2]
    return int(major), int(minor_)


def expected_protocol(version: str) -> str:
    """ansible-core 2.21 hands the wrapper the whole command; earlier ones the module and args file."""
    return "command" if minor(version) >= (2, 21) else "legacy"


def facts_parallel(version: str) -> bool:
    """The ansible_facts_parallel value that runs facts modules through async_wrapper: 2.14 and
    2.15 run them serially when it is true (their gather_facts has the test the wrong way round)."""
    return minor(version) >= (2, 16)


# Makes an ansible-core call itself another version (set in MATRIX_PRETEND_VERSION), in the
# controller and in every process it starts; where ansible is not importable it does nothing.
PRETEND_SITECUSTOMIZE = '''\
import os
try:
    import ansible.release
    ansible.release.__version__ = os.environ["MATRIX_PRETEND_VERSION"]
except Exception:
    pass
'''


class Controller:
    def __init__(self, version: str, tmp: Path, become_dir: Path, venv: str | None = None):
        self.version = version
        self.controller = controller(version, venv=venv)
        self.tmp = tmp
        self.become_dir = become_dir
        self.extra_env: dict[str, str] = {}
        if venv and venv != version:
            site = tmp / "pretend"
            site.mkdir()
            (site / "sitecustomize.py").write_text(PRETEND_SITECUSTOMIZE)
            self.extra_env = {"PYTHONPATH": str(site), "MATRIX_PRETEND_VERSION": f"{version}.0"}

    def run(self, playbook: str, async_dir: Path, *args: str) -> str:
        (self.tmp / "remote").mkdir(exist_ok=True)
        inventory = self.tmp / f"inventory-{async_dir.name}"
        inventory.write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={TARGET_PYTHON}"
            f" ansible_async_dir={async_dir}\n"
        )
        extra = {
            "matrix_tmp": str(self.tmp),
            "async_dir": str(async_dir),
            "become_async_dir": str(self.become_dir),
            "ansible_facts_parallel": facts_parallel(self.version),
        }
        env = ansible_env(
            ANSIBLE_CONFIG=str(self.tmp / "none.cfg"),
            ANSIBLE_LIBRARY=f"{LIBRARY}:{MODULES}",
            ANSIBLE_LOCAL_TEMP=str(self.tmp / "local"),
            ANSIBLE_REMOTE_TEMP=str(self.tmp / "remote"),
            ANSIBLE_DEPRECATION_WARNINGS="0",
            ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS),
            ANSIBLE_CALLBACKS_ENABLED="async_progress",
            **self.extra_env,
        )
        command = [str(self.controller.ansible_playbook), "-i", str(inventory),
                   "-e", json.dumps(extra), str(PLAYBOOKS / playbook), *args]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        print(f"----- ansible-core {self.version}: {playbook} {' '.join(args)}\n{run.stdout}{run.stderr}")
        if self.extra_env and playbook == "controllers.yml":
            assert f"version={self.version}.0 " in run.stdout, "the controller did not take the pretended version"
        see = f"ansible-playbook {playbook} on ansible-core {self.version} (rc {run.returncode})"
        assert run.returncode == 0, f"{see} failed"
        recap = parse_recap(run.stdout)
        assert list(recap) == ["localhost"], (recap, see)
        assert_recap_ok(recap, see=see)
        return run.stdout


def jobs(async_dir: Path) -> dict[str, tuple[dict, str]]:
    """Each job left in the async dir: its file's JSON and its log (only our wrapper writes logs)."""
    found = {}
    for log in async_dir.glob("*.log"):
        job = async_dir / log.name[: -len(".log")]
        found[job.name] = (json.loads(job.read_text()), log.read_text())
    return found


def invoked(log: str, key: str) -> str:
    line = next(line for line in log.splitlines() if " invoked " in line)
    return re.search(rf" {key}=(\S+)", line).group(1)


def check_facts_jobs(left: dict, modules: list[str]) -> None:
    """gather_facts leaves its jobs' files (it never cleans up): one per facts module, each run
    with a time limit of 0, ended by its module and not by the wrapper."""
    facts = {jid: job for jid, job in left.items()
             if re.search(r"/AnsiballZ_(setup|service_facts)\.py$", invoked(job[1], "module"))}
    names = sorted(Path(invoked(log, "module")).name for _, log in facts.values())
    assert names == sorted(f"AnsiballZ_{m}.py" for m in modules), names
    for result, log in facts.values():
        assert invoked(log, "time_limit") == "0", log
        assert " timeout " not in log and " result state=finished" in log, log
        assert "ansible_facts" in result and not result.get("failed"), result


@pytest.fixture
def become_dir(test_users):
    """A dir the become user may create its async dir in (its home's is shared with other tests)."""
    user = pwd.getpwnam(BECOME_USER)
    path = Path(tempfile.mkdtemp(prefix="matrix-become-"))
    os.chown(path, user.pw_uid, user.pw_gid)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("version", CONTROLLERS, ids=lambda v: f"core-{v}")
def test_controller(version, tmp_path, become_dir):
    run_matrix(Controller(version, tmp_path, become_dir), expected_protocol(version))


def test_a_controller_version_the_matrix_does_not_know(tmp_path, become_dir):
    """ansible-core 2.21 calling itself 2.99 (to ansible itself, its modules and the playbook):
    nothing here keys on a version list, the wrapper takes its cue from its command line."""
    run_matrix(Controller("2.99", tmp_path, become_dir, venv="2.21"), "command")


def run_matrix(controller: Controller, protocol: str) -> None:
    tmp_path = controller.tmp
    become_dir = controller.become_dir

    async_dir = tmp_path / "async"
    out = controller.run("controllers.yml", async_dir)
    # The async_progress callback, beside the default one: a line under each ASYNC POLL line.
    lines = out.splitlines()
    polls = [n for n, line in enumerate(lines) if line.startswith("ASYNC POLL on localhost:")]
    assert polls and all(lines[n + 1].startswith("  localhost: [") for n in polls), out
    assert "callback plugin" not in out, out
    left = jobs(async_dir)
    for result, log in left.values():
        assert invoked(log, "protocol") == protocol, log
    by_after = {result.get("after"): result for result, _ in left.values() if "after" in result}
    assert by_after["junk"]["warnings"] == [JUNK + "trailing junk: goodbye"], by_after
    # Up to 2.20 blank lines after the JSON are junk too; 2.21 dropped that warning.
    blank_warnings = [JUNK + "\n  "] if protocol == "legacy" else None
    assert by_after["blank"].get("warnings") == blank_warnings, by_after
    timed_out = [log for result, log in left.values() if result.get("msg") == "Timeout exceeded"]
    assert len(timed_out) == 1, left
    # Timed as this version's own wrapper would have, from the _ansible_version ansible wrote
    # among the module's arguments: the pinned 2.18 and later patches have the halving watchdog.
    newer = tuple(int(n) for n in controller.version.split(".")) >= (2, 18)
    assert invoked(timed_out[0], "limit_rule") == ("stock-halving" if newer else "stock-trailing"), timed_out[0]
    check_facts_jobs(left, ["setup", "service_facts"])
    # The become user's async dir, made by the wrapper running as that user, holds the job
    # the playbook did not clean up (the polled one was).
    become_async_dir = become_dir / BECOME_USER
    assert become_async_dir.stat().st_uid == pwd.getpwnam(BECOME_USER).pw_uid
    become_jobs = jobs(become_async_dir)
    assert len(become_jobs) == 1, become_jobs
    for result, log in become_jobs.values():
        assert invoked(log, "protocol") == protocol and result["stdout"] == BECOME_USER, (result, log)

    check_dir = tmp_path / "async-check"
    controller.run("controllers_check.yml", check_dir, "--check")
    left = jobs(check_dir)
    for result, log in left.values():
        assert invoked(log, "protocol") == protocol, log
    check_facts_jobs(left, ["setup", "setup", "service_facts"])

