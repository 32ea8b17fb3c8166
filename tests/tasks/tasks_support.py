"""Helpers of the tests of async tasks on localhost (tests/tasks): the playbook runner and its environment knobs
(controllers, recap parsing, process checks and waiting come from the shared tests/harness).

Every test runs once per controller (ansible-core 2.19 and 2.21, the two async_wrapper
protocols). Each playbook under playbooks/ holds its own `assert` tasks; the Python side checks
that the run succeeded (rc and PLAY RECAP) and, where useful, files and processes on the host.

Environment knobs (all optional):
  E2E_CONTROLLERS  comma-separated controller versions to run (default: 2.19,2.21)
  E2E_VENV_DIR     folder holding core-2.19/ and core-2.21/ venvs (default: <repo>/.venv)
  E2E_LIBRARY      colon-separated module dirs used *instead of* <repo>/library; an empty string
                   runs the controller's own modules (only useful with un-stubbed venvs: see
                   README.md). The test modules dirs are always added after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.controllers import VENV_DIR as DEFAULT_VENV_DIR
from harness.controllers import Controller, versions_from_env
from harness.env import ansible_env
from harness.mounts import covered
from harness.paths import LIBRARY as NATIVE_LIBRARY
from harness.paths import REPO
from harness.recap import assert_recap_ok, parse_recap

TASKS = REPO / "tests" / "tasks"
PLAYBOOKS = TASKS / "playbooks"
TEST_MODULE_DIRS = [TASKS / "modules", REPO / "target" / "e2e-modules"]
VENV_DIR = Path(os.environ.get("E2E_VENV_DIR") or DEFAULT_VENV_DIR)
CONTROLLERS = versions_from_env("E2E_CONTROLLERS")

# True when the tests run against this project's native modules (the normal case).
NATIVE = "E2E_LIBRARY" not in os.environ
LIBRARY_DIRS = (
    [NATIVE_LIBRARY] if NATIVE else [Path(p) for p in os.environ["E2E_LIBRARY"].split(":") if p]
) + TEST_MODULE_DIRS

# Inventory / async-dir modes for Play.run()
PER_TEST = "per-test"  # ansible_async_dir = <tmp>/async, set in the inventory (default)
UNSET = "unset"  # no ansible_async_dir anywhere: ansible's default ~/.ansible_async


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    command: list[str]
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    def describe(self) -> str:
        return (f"command: {' '.join(self.command)}\nrc: {self.rc}\n"
                f"----- stdout -----\n{self.stdout}\n----- stderr -----\n{self.stderr}")


class Play:
    """Runs playbooks for one test, on one controller, in the test's own temp dirs."""

    def __init__(self, controller: Controller, tmp: Path):
        self.controller = controller
        self.tmp = tmp
        # The passwd home: ansible expands `~` of the async dir with `echo ~root`, and so does
        # the wrapper (whatever HOME says).
        self.home = Path(pwd.getpwuid(os.getuid()).pw_dir)
        # With no ansible_async_dir (UNSET), the runs happen in a mount namespace where the
        # default dir, ~/.ansible_async, is this folder: the real one is shared with others.
        self.default_async_dir = tmp / "default-async"
        self.async_dir = tmp / "async"  # the per-test ansible_async_dir
        self.remote_tmp = tmp / "remote-tmp"
        self.local_tmp = tmp / "local-tmp"
        for d in (self.remote_tmp, self.local_tmp):
            d.mkdir(parents=True, exist_ok=True)
        # Unique text for command lines, so the test can find its own processes.
        self.nonce = str(100000 + secrets.randbelow(900000))

    def env(self) -> dict[str, str]:
        cfg = self.tmp / "ansible.cfg"
        cfg.write_text("[defaults]\n")
        return ansible_env(
            HOME=str(self.home),
            ANSIBLE_CONFIG=str(cfg),
            ANSIBLE_LIBRARY=":".join(str(p) for p in LIBRARY_DIRS),
            ANSIBLE_LOCAL_TEMP=str(self.local_tmp),
            ANSIBLE_REMOTE_TEMP=str(self.remote_tmp),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
            ANSIBLE_CALLBACK_RESULT_FORMAT="json",
            ANSIBLE_HOST_KEY_CHECKING="False",
            ANSIBLE_RETRY_FILES_ENABLED="False",
            ANSIBLE_DEPRECATION_WARNINGS="False",
        )

    def inventory(self, async_dir: str, extra_hosts: dict[str, dict] | None) -> Path:
        localhost = {
            "ansible_connection": "local",
            "ansible_python_interpreter": str(self.controller.python),
        }
        if async_dir == PER_TEST:
            localhost["ansible_async_dir"] = str(self.async_dir)
        hosts = {"localhost": localhost}
        for name, hostvars in (extra_hosts or {}).items():
            merged = dict(localhost)
            merged.update(hostvars)
            hosts[name] = merged
        path = self.tmp / "inventory.yml"
        path.write_text(json.dumps({"all": {"hosts": hosts}}, indent=2))  # JSON is YAML
        return path

    def run(self, playbook: str, *, async_dir: str = PER_TEST, extra_vars: dict | None = None,
            extra_hosts: dict[str, dict] | None = None, check: bool = False,
            expect_rc: int = 0, timeout: int = 300) -> Result:
        variables = {
            "e2e_tmp": str(self.tmp),
            "e2e_home": str(self.home),
            "e2e_async_dir": str(self.async_dir) if async_dir == PER_TEST else str(self.home / ".ansible_async"),
            "e2e_nonce": self.nonce,
            "e2e_native": NATIVE,
            "e2e_controller": self.controller.version,
        }
        variables.update(extra_vars or {})
        vars_file = self.tmp / "extra-vars.json"
        vars_file.write_text(json.dumps(variables))
        command = [
            str(self.controller.ansible_playbook),
            "-i", str(self.inventory(async_dir, extra_hosts)),
            "-e", f"@{vars_file}",
            str(PLAYBOOKS / playbook),
        ]
        if check:
            command.append("--check")
        with contextlib.ExitStack() as stack:
            if async_dir == UNSET:
                self.default_async_dir.mkdir(mode=0o700, exist_ok=True)
                command = [*stack.enter_context(covered(self.home / ".ansible_async", self.default_async_dir)),
                           *command]
            proc = subprocess.run(command, cwd=self.tmp, env=self.env(), capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        result = Result(proc.returncode, proc.stdout, proc.stderr, command, parse_recap(proc.stdout))
        # pytest shows this (captured stdout) when the test fails; `-rP` shows it for passes.
        print(result.describe())
        see = f"{playbook}: see ansible-playbook's output in the captured stdout"
        output = proc.stdout + proc.stderr
        assert "STOCK async_" not in output, f"a stock async module ran. {see}"
        assert result.rc == expect_rc, f"ansible-playbook exited {result.rc}, expected {expect_rc}. {see}"
        if expect_rc == 0:
            assert_recap_ok(result.recap, see=see)
        return result
