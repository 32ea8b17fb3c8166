"""ansible-core's own integration targets for async, from its source distribution, run with
real ansible-playbook on localhost against this project's library/.

The targets `async`, `async_extra_data` and `async_fail` come from the sdist of the exact
ansible-core each controller venv pins (tests/controllers.txt), fetched with pip at test time
into .venv/sdists/ (ignored by git, kept between runs). Each is run as ansible-test runs it,
less ansible-test itself: its runme.sh if it has one, else a playbook that applies the target
as a role to `testhost` (facts gathered), with the target's dependency roles (prepare_tests,
setup_*) from the same sdist on the roles path and an inventory like ansible-test's
(`testhost`, local connection, pipelining, the controller's python).

ANSIBLE_LIBRARY is this project's library/ and ANSIBLE_ACTION_PLUGINS its action_plugins/ (so
the `poll:` loops run through action_plugins/async_status.py, whose calls wait for a job's end:
the targets' time-limit cases, async_fail's among them, hold it to stock's answers); the venvs'
stock async modules are stubs that fail loudly, so a passing target ran ours. The test also checks that in the async dir: the launcher's
unpacked program is in `.bin/`, and every job file left there has the log only our wrapper
writes, naming the protocol this controller speaks.

The targets look at `~/.ansible_async` (the default async dir) themselves, so each run happens
in a private mount namespace where root's `~/.ansible_async` is a fresh folder of the test's
(as tests/homedir does): every run has its own async dir, nested ansible-playbook runs included.
Needs root.

It also runs one command of the `gathering_facts` target, its case for a facts module that
does not keep its own time: `slow` (a shell script, so its arguments are `key=value` words in an
arguments file) gathered in parallel with `gather_timeout=1` and a 5 s task timeout must end in
`Timeout exceeded`, which it does only when the wrapper ends the module at stock's time (2 s) and
not at the older watchdog's 10 s; on 2.21 and 2.22, whose command line names the arguments file
last.

UPSTREAM_CONTROLLERS=2.22 runs only that controller (default: 2.19 and 2.22; 2.21 and 2.22 for
`gathering_facts`).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml

from harness.controllers import VENV_DIR, Controller, controller as find_controller, versions_from_env
from harness.env import ansible_env
from harness.jobs import kill_jobs
from harness.mounts import covered
from harness.paths import LIBRARY, REPO
from harness.procs import kill_all, pids_with_env
from harness.recap import assert_recap_ok, parse_recap

TARGETS = ("async", "async_extra_data", "async_fail")
CONTROLLERS = versions_from_env("UPSTREAM_CONTROLLERS", ("2.19", "2.22"))
FACTS_CONTROLLERS = versions_from_env("UPSTREAM_CONTROLLERS", ("2.21", "2.22"))
SDISTS = VENV_DIR / "sdists"
# Every process of a run carries UPSTREAM_TEST_MARK=MARK in its environment.
MARK = f"upstream-{os.getpid()}"


def sdist(controller: Controller) -> Path:
    """The sdist of the controller's exact ansible-core, downloaded once into .venv/sdists/."""
    name = controller.pinned
    path = SDISTS / f"ansible_core-{name}.tar.gz"
    if path.exists():
        return path
    SDISTS.mkdir(parents=True, exist_ok=True)
    # The controller's own python: a pre-release needs no --pre when pinned, and pip checks the
    # sdist's Requires-Python against the interpreter (2.22 wants 3.13).
    with tempfile.TemporaryDirectory(dir=SDISTS) as download:
        subprocess.run([str(controller.python), "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", f"ansible-core=={name}", "-d", download],
                       check=True, timeout=600, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        os.replace(Path(download) / path.name, path)
    return path


def role_dependencies(meta: Path) -> list[str]:
    """The role names a target's meta/main.yml depends on."""
    if not meta.exists():
        return []
    deps = (yaml.safe_load(meta.read_text()) or {}).get("dependencies") or []
    return [d if isinstance(d, str) else d.get("role") or d["name"] for d in deps]


def unpack_target(tarball: Path, target: str, into: Path) -> Path:
    """The sdist's test/integration/ with `target` and the roles it depends on (recursively)
    unpacked under `into`; returns that integration folder."""
    with tarfile.open(tarball) as tar:
        members = tar.getmembers()
        top = members[0].name.split("/")[0]
        prefix = f"{top}/test/integration/targets/"
        wanted, todo = set(), [target]
        while todo:
            name = todo.pop()
            if name in wanted:
                continue
            wanted.add(name)
            chosen = [m for m in members if m.name.startswith(f"{prefix}{name}/")]
            assert chosen, f"{tarball.name} has no integration target {name}"
            tar.extractall(into, members=chosen, filter="data")
            todo += role_dependencies(into / prefix / name / "meta" / "main.yml")
    return into / top / "test" / "integration"


def expected_protocol(version: str) -> str:
    """ansible-core 2.21 and later hand the wrapper the whole command; earlier ones the module
    and its arguments file (the job log's `invoked protocol=`)."""
    major, minor = (int(n) for n in version.split(".")[:2])
    return "command" if (major, minor) >= (2, 21) else "legacy"


def run_target(controller: Controller, integration: Path, target: str, async_dir: Path,
               tmp: Path) -> subprocess.CompletedProcess:
    """Runs the target as ansible-test would, with root's ~/.ansible_async being `async_dir`."""
    target_dir = integration / "targets" / target
    if (target_dir / "runme.sh").exists():
        command, cwd = ["./runme.sh", "-v"], target_dir
    else:
        play = [{"hosts": "testhost", "gather_facts": True, "vars": {"output_dir": str(tmp / "output")},
                 "roles": [target]}]
        (integration / f"{target}-play.yml").write_text(json.dumps(play, indent=2))  # JSON is YAML
        command, cwd = ["ansible-playbook", f"{target}-play.yml", "-i", "inventory", "-v"], integration
    return run_in_own_async_dir(controller, integration, command, cwd, async_dir, tmp,
                                f"ansible-core {controller.pinned}: {target}")


def run_in_own_async_dir(controller: Controller, integration: Path, command: list[str], cwd: Path,
                         async_dir: Path, tmp: Path, what: str, **extra_env: str) -> subprocess.CompletedProcess:
    """Runs `command` in `cwd` as ansible-test would run a target's, with root's ~/.ansible_async
    being `async_dir`; its output is kept in `tmp`/run.log."""
    home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    (integration / "inventory").write_text(
        "[testgroup]\n"
        f"testhost ansible_connection=local ansible_pipelining=yes ansible_python_interpreter={controller.python}\n")
    (tmp / "ansible.cfg").write_text("[defaults]\n")
    output_dir = tmp / "output"
    output_dir.mkdir()
    env = ansible_env(
        HOME=str(home),
        PATH=f"{controller.bin}:{os.environ['PATH']}",
        UPSTREAM_TEST_MARK=MARK,
        ANSIBLE_CONFIG=str(tmp / "ansible.cfg"),
        ANSIBLE_LIBRARY=str(LIBRARY),
        # The release's action plugins too: the poll loop's calls wait for a job's end.
        ANSIBLE_ACTION_PLUGINS=str(REPO / "action_plugins"),
        ANSIBLE_LOCAL_TEMP=str(tmp / "local"),
        ANSIBLE_REMOTE_TEMP=str(tmp / "remote"),
        ANSIBLE_ROLES_PATH=str(integration / "targets"),
        ANSIBLE_PLAYBOOK_DIR=str(integration),
        ANSIBLE_DEPRECATION_WARNINGS="false",
        ANSIBLE_HOST_KEY_CHECKING="false",
        OUTPUT_DIR=str(output_dir),
        INVENTORY_PATH=str(integration / "inventory"),
        **extra_env,
    )
    with covered(home / ".ansible_async", async_dir) as private:
        command = [*private, *command]
        run = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    (tmp / "run.log").write_text(f"$ {' '.join(command)}\n{run.stdout}\n--- stderr ---\n{run.stderr}")
    print(f"----- {what} (rc {run.returncode})\n"
          f"{run.stdout[-20000:]}\n{run.stderr[-5000:]}")
    return run


def check_our_programs_ran(async_dir: Path, protocol: str) -> None:
    """The launcher's program is in .bin/ (stock's wrapper makes no .bin/), and every job file
    left has our wrapper's log beside it, spoken to in `protocol`."""
    programs = [p.name for p in (async_dir / ".bin").glob("ansible-async-*")] if (async_dir / ".bin").is_dir() else []
    assert programs, f"no unpacked program in {async_dir}/.bin: our async_wrapper never ran"
    for job in async_dir.iterdir():
        if job.name.startswith(".") or job.suffix == ".log":
            continue
        log = async_dir / f"{job.name}.log"
        assert log.exists(), f"job {job.name} has no log: not started by our wrapper ({job.read_text()[:500]})"
        assert re.search(rf" invoked protocol={protocol} ", log.read_text()), log.read_text()


@pytest.fixture
def async_dir(tmp_path):
    """The run's private async dir; what its jobs leave running is ended afterwards."""
    path = tmp_path / "async"
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    yield path
    kill_all(pids_with_env("UPSTREAM_TEST_MARK", MARK))
    kill_jobs(path)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("version", CONTROLLERS, ids=lambda v: f"core-{v}")
def test_upstream_target(version, target, tmp_path, async_dir):
    if os.geteuid() != 0:
        pytest.fail("tests/upstream run as root (each run mounts its own ~/.ansible_async in a mount namespace)")
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is missing")
    controller = find_controller(version)
    integration = unpack_target(sdist(controller), target, tmp_path / "src")
    run = run_target(controller, integration, target, async_dir, tmp_path)
    see = f"ansible-core {controller.pinned} target {target}: rc {run.returncode}, see {tmp_path / 'run.log'}"
    assert "STOCK async_" not in run.stdout, see
    assert run.returncode == 0, see
    if not (integration / "targets" / target / "runme.sh").exists():
        recap = parse_recap(run.stdout)
        assert list(recap) == ["testhost"], (recap, see)
        assert_recap_ok(recap, see=see)
    check_our_programs_ran(async_dir, expected_protocol(version))


@pytest.mark.parametrize("version", FACTS_CONTROLLERS, ids=lambda v: f"core-{v}")
def test_gathering_facts_ends_a_shell_facts_module_at_stocks_time(version, tmp_path, async_dir):
    """runme.sh of ansible-core's gathering_facts target: "test that gather_facts will timeout
    parallel modules that dont support gather_timeout when using gather_Timeout"."""
    if os.geteuid() != 0:
        pytest.fail("tests/upstream run as root (each run mounts its own ~/.ansible_async in a mount namespace)")
    controller = find_controller(version)
    integration = unpack_target(sdist(controller), "gathering_facts", tmp_path / "src")
    target_dir = integration / "targets" / "gathering_facts"
    command = ["ansible", "-m", "gather_facts", "localhost", "--playbook-dir", "./",
               "-a", "gather_timeout=1 parallel=true", "-v"]
    run = run_in_own_async_dir(controller, integration, command, target_dir, async_dir, tmp_path,
                               f"ansible-core {controller.pinned}: gathering_facts, slow",
                               ANSIBLE_FACTS_MODULES="ansible.legacy.slow", ANSIBLE_TASK_TIMEOUT="5")
    see = f"ansible-core {controller.pinned} gathering_facts: rc {run.returncode}, see {tmp_path / 'run.log'}"
    assert "STOCK async_" not in run.stdout + run.stderr, see
    assert "Timeout exceeded" in run.stdout + run.stderr, see
    check_our_programs_ran(async_dir, expected_protocol(version))
    logs = [log.read_text() for log in async_dir.glob("*.log")]
    assert len(logs) == 1, (logs, see)
    assert " deadline=2 limit_rule=stock-halving " in logs[0], logs[0]
