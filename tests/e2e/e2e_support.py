"""Helpers of the end-to-end tests (tests/e2e): controllers, the playbook runner, process checks.

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

import json
import os
import pwd
import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
E2E = REPO / "tests" / "e2e"
PLAYBOOKS = E2E / "playbooks"
NATIVE_LIBRARY = REPO / "library"
TEST_MODULE_DIRS = [E2E / "modules", REPO / "target" / "e2e-modules"]
VENV_DIR = Path(os.environ.get("E2E_VENV_DIR") or REPO / ".venv")
CONTROLLERS = [v.strip() for v in os.environ.get("E2E_CONTROLLERS", "2.19,2.21").split(",") if v.strip()]

# True when the tests run against this project's native modules (the normal case).
NATIVE = "E2E_LIBRARY" not in os.environ
LIBRARY_DIRS = (
    [NATIVE_LIBRARY] if NATIVE else [Path(p) for p in os.environ["E2E_LIBRARY"].split(":") if p]
) + TEST_MODULE_DIRS

RECAP_RE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.MULTILINE,
)

# Inventory / async-dir modes for Play.run()
PER_TEST = "per-test"  # ansible_async_dir = <tmp>/async, set in the inventory (default)
UNSET = "unset"  # no ansible_async_dir anywhere: ansible's default ~/.ansible_async


@dataclass
class Controller:
    version: str
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def ansible_playbook(self) -> Path:
        return self.venv / "bin" / "ansible-playbook"


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
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        cfg = self.tmp / "ansible.cfg"
        cfg.write_text("[defaults]\n")
        env.update(
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
        return env

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
        if async_dir == UNSET:
            self.default_async_dir.mkdir(mode=0o700, exist_ok=True)
            real = self.home / ".ansible_async"
            real.mkdir(mode=0o700, exist_ok=True)
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount --bind "$0" "$1" && shift && exec "$@"', str(self.default_async_dir), str(real),
                       *command]
        proc = subprocess.run(command, cwd=self.tmp, env=self.env(), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        result = Result(proc.returncode, proc.stdout, proc.stderr, command)
        for m in RECAP_RE.finditer(proc.stdout):
            result.recap[m["host"]] = {k: int(v) for k, v in m.groupdict().items() if k != "host"}
        # pytest shows this (captured stdout) when the test fails; `-rP` shows it for passes.
        print(result.describe())
        see = f"{playbook}: see ansible-playbook's output in the captured stdout"
        output = proc.stdout + proc.stderr
        assert "STOCK async_" not in output, f"a stock async module ran. {see}"
        assert result.rc == expect_rc, f"ansible-playbook exited {result.rc}, expected {expect_rc}. {see}"
        if expect_rc == 0:
            assert result.recap, f"no PLAY RECAP. {see}"
            for host, counts in result.recap.items():
                assert counts["failed"] == 0 and counts["unreachable"] == 0, f"{host} failed. {see}"
        return result


def processes_matching(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if text in cmdline:
            found.append((int(entry.name), cmdline))
    return found


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    """Polls `condition` until it returns a true value, or fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
