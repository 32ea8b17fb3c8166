"""The async_status action (action_plugins/async_status.py) over SSH, on every controller.

status_action.yml runs with -vvv and pipelining on, the async dir under `~` (the default's
kind), the action plugin on the action path, twice per controller: with this project's library
(ours), and with ansible's stock async_wrapper.py and async_status.py ahead of it (stock), where
the action must be ansible's own. Counted from the `SSH: EXEC` lines: ours' poll, cleanup and
status of a job that is gone are one pipelined command each, stock's are ansible's `echo ~` and
one command; the `poll: 1` task likewise for each of its status calls. What each step reported
must be stock's: every key stock's result has, ours has with the same value and type (the job
id and the test's dir name aside), `results_file` and `erased` naming the job file under the
passwd home.

STATUS_ACTION_CONTROLLERS=2.14,2.22 runs only those (default: every controller).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness.controllers import VERSIONS, controller as find_controller, versions_from_env
from harness.paths import LIBRARY, REPO
from harness.ssh_sandbox import Ansible, home_of
from test_ssh_operations import operations, task_lines

CONTROLLERS = versions_from_env("STATUS_ACTION_CONTROLLERS", VERSIONS)
ACTION_PLUGINS = REPO / "action_plugins"
STEPS = ("poll", "cleanup", "gone", "poll1")
# Ours only: an async_job call (the release's async_job action hands the dir unexpanded too).
JOB_STEP = "job"
# What differs between two runs of the same command, whoever reports it.
RUN_BOUND = {"start", "end", "delta", "invocation"}

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"


def run(controller, sshd, tmp: Path, *, stock: bool) -> tuple[dict[str, list[str]], dict, Path]:
    tmp.mkdir()
    ansible = Ansible(controller, sshd, tmp, playbooks=PLAYBOOKS)
    (tmp / "ansible.cfg").write_text(f"[defaults]\naction_plugins = {ACTION_PLUGINS}\n")
    home_dir = home_of("root") / f".ansible_async-{ansible.mark}"
    kwargs = {}
    if stock:
        library = tmp / "stock-library"
        library.mkdir()
        kwargs["library"] = controller.stock_library(library)
    try:
        result = ansible.run("status_action.yml", ansible.inventory(1), pipelining=True, args=("-vvv",),
                             extra_vars={"home_async_dir": f"~/{home_dir.name}", "stock_modules": stock},
                             **kwargs)
        result.assert_ok(hosts=1)
        reported = json.loads((tmp / "status_results.json").read_text())
    finally:
        ansible.stop_everything()
        # The sessions' /root is the private sshd's own folder (harness.sshd).
        shutil.rmtree(sshd.root_home / home_dir.name, ignore_errors=True)
    counted = operations(result.stdout)
    assert sorted(counted) == sorted((*STEPS, JOB_STEP)), counted
    return counted, reported, home_dir


def normalized(value, home_dir: Path):
    """`value` with the run's job ids and async dir name replaced by placeholders."""
    text = re.sub(r"j\d+\.\d+", "JID", json.dumps(value)).replace(home_dir.name, "ASYNC_DIR")
    return json.loads(text)


@pytest.mark.parametrize("version", CONTROLLERS)
def test_a_status_call_is_one_ssh_command(sshd, tmp_path, version):
    controller = find_controller(version)
    ours, ours_reported, ours_dir = run(controller, sshd, tmp_path / "ours", stock=False)
    stock, stock_reported, stock_dir = run(controller, sshd, tmp_path / "stock", stock=True)
    print(f"\nansible-core {version}, SSH commands per step:\n" + "\n".join(
        f"{step:8} ours {len(ours[step]):2} ({', '.join(ours[step])})  "
        f"stock {len(stock[step]):2} ({', '.join(stock[step])})" for step in STEPS))

    for step in ("poll", "cleanup", "gone"):
        assert ours[step] == ["exec (pipelined)"], (step, ours[step])
        assert stock[step] == ["echo ~", "exec (pipelined)"], (step, stock[step])
    # poll: 1: the launch, then each status call and the cleanup: ours one command each, stock's
    # two.
    assert "echo ~" not in ours["poll1"], ours["poll1"]
    assert ours["poll1"][-1] == "exec (pipelined)", ours["poll1"]
    assert stock["poll1"].count("echo ~") == stock["poll1"].count("exec (pipelined)"), stock["poll1"]

    # What each step reported: stock's keys, values and types, in ours.
    ours_n = normalized(ours_reported, ours_dir)
    stock_n = normalized(stock_reported, stock_dir)
    for step in STEPS:
        for key, value in stock_n[step].items():
            if key in RUN_BOUND:
                continue
            assert key in ours_n[step], (step, key, ours_n[step])
            assert ours_n[step][key] == value, (step, key, ours_n[step][key], value)
    # async_job (ours only): one pipelined command, in the play's async dir, expanded.
    assert ours[JOB_STEP] == ["exec (pipelined)"] and stock[JOB_STEP] == [], (ours[JOB_STEP], stock[JOB_STEP])
    home = str(home_of("root"))
    assert ours_n["job"]["async_dir"] == f"{home}/ASYNC_DIR", ours_n["job"]
    assert ours_n["poll"]["results_file"] == f"{home}/ASYNC_DIR/JID", ours_n["poll"]
    assert ours_n["cleanup"]["erased"] == f"{home}/ASYNC_DIR/JID", ours_n["cleanup"]
    assert ours_n["gone"]["msg"] == "could not find job" and ours_n["gone"]["failed"] is True, ours_n["gone"]


def poll_run(controller, sshd, tmp: Path, *, waits: bool) -> tuple[dict, dict, dict]:
    """poll_wait.yml with the release's action plugins: with this project's library (`waits`),
    or with ansible's own async_wrapper beside our async_status (no call waits). The SSH
    commands, the output lines and the results of each `OPS` task."""
    tmp.mkdir()
    ansible = Ansible(controller, sshd, tmp, playbooks=PLAYBOOKS)
    (tmp / "ansible.cfg").write_text(f"[defaults]\naction_plugins = {ACTION_PLUGINS}\n")
    kwargs = {}
    if not waits:
        library = controller.stock_library(tmp / "mixed-library")
        (library / "async_status.py").unlink()
        shutil.copyfile(LIBRARY / "async_status", library / "async_status")
        kwargs["library"] = library
    try:
        # Far less than the `poll: 600` task's interval.
        result = ansible.run("poll_wait.yml", ansible.inventory(1), pipelining=True, args=("-vvv",),
                             extra_vars={"waits": waits}, timeout=180, **kwargs)
        result.assert_ok(hosts=1)
        reported = json.loads((tmp / "poll_results.json").read_text())
    finally:
        ansible.stop_everything()
    return operations(result.stdout), task_lines(result.stdout), reported


def polls_running(lines: list[str]) -> int:
    """ansible's "ASYNC POLL" lines: status calls of the loop that found the job running."""
    return sum(1 for line in lines if line.startswith("ASYNC POLL on "))


@pytest.mark.parametrize("version", [v for v in ("2.14", "2.19", "2.21", "2.22") if v in CONTROLLERS])
def test_a_poll_answers_when_the_job_ends(sshd, tmp_path, version):
    """The `poll:` loop's pauses (ansible's `time.sleep(poll)` before each status call) with the
    action plugin, from poll_wait.yml's `OPS` tasks:

    - `poll: 600` on a 1 s module ends within the harness's 180 s (ansible's own loop would
      sleep 600 s before its first call): its first call comes at once and waits for the
      module's end, so one status call and the cleanup (two pipelined commands after the
      launch), no "ASYNC POLL" line.
    - A job that outlives `async: 6` under `poll: 2`: three calls find it running (the budget,
      as stock's), and the task fails with the controller's message.
    - Calls that do not wait (ansible's own wrapper's job file, no deadline): `poll: 4`,
      `async: 12` on a 10 s module succeeds, which it does only when the calls come one per
      `poll` seconds (faster ones spend the budget early) and the last at stock's moment (not
      a full `poll` after the second call's end); two calls found it running, as stock's.

    Also a status call of the user's with `wait: 30` on a 3 s job finds it finished in one
    call, and an until-loop of four calls with `wait: 2` and no delay collects a 4 s job."""
    controller = find_controller(version)
    ops, lines, reported = poll_run(controller, sshd, tmp_path / "waits", waits=True)
    assert ops["long poll"].count("exec (pipelined)") == 2, ops["long poll"]
    assert polls_running(lines["long poll"]) == 0, lines["long poll"]
    assert reported["long_poll"]["finished"] in (1, True), reported["long_poll"]

    outlived = reported["outlived"]
    assert outlived["failed"] is True, outlived
    # 2.21 says "unparsable" for any job still running at the last poll (a controller bug,
    # fixed in 2.22); stock's action gives it the same message.
    expected = ("async task produced unparsable results" if version == "2.21"
                else "async task did not complete within the requested time - 6s")
    assert outlived["msg"] == expected, outlived
    assert polls_running(lines["outlived"]) == 3, lines["outlived"]

    ops, lines, reported = poll_run(controller, sshd, tmp_path / "no-waits", waits=False)
    assert reported["steady"]["finished"] in (1, True) and reported["steady"]["rc"] == 0, reported["steady"]
    assert polls_running(lines["steady"]) == 2, lines["steady"]
