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
from harness.paths import REPO
from ssh_harness import Ansible, home_of
from test_ssh_operations import operations

CONTROLLERS = versions_from_env("STATUS_ACTION_CONTROLLERS", VERSIONS)
ACTION_PLUGINS = REPO / "action_plugins"
STEPS = ("poll", "cleanup", "gone", "poll1")
# Ours only: an async_job call (the release's async_job action hands the dir unexpanded too).
JOB_STEP = "job"
# What differs between two runs of the same command, whoever reports it.
RUN_BOUND = {"start", "end", "delta", "invocation"}


def run(controller, sshd, tmp: Path, *, stock: bool) -> tuple[dict[str, list[str]], dict, Path]:
    tmp.mkdir()
    ansible = Ansible(controller, sshd, tmp)
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


@pytest.mark.parametrize("version", [v for v in ("2.19", "2.22") if v in CONTROLLERS])
def test_a_poll_answers_when_the_job_ends(sshd, tmp_path, version):
    """poll_wait.yml's `poll: 5` task, whose module ends at about 8 s: with the action plugin the
    first poll (at 5 s) waits for the module's end and finds it finished (no "ASYNC POLL" line,
    which ansible prints for each poll that finds the job running); without it (library/ alone)
    the first poll finds it running and the second one finished. With the plugin, a status call
    of the user's with `wait: 30` on a 3 s job finds it finished in one call, and an until-loop
    of four calls with `wait: 2` and no delay collects a 4 s job (each retry waits again)."""
    controller = find_controller(version)
    polls = {}
    for with_actions in (True, False):
        tmp = tmp_path / ("actions" if with_actions else "library")
        tmp.mkdir()
        ansible = Ansible(controller, sshd, tmp)
        if with_actions:
            (tmp / "ansible.cfg").write_text(f"[defaults]\naction_plugins = {ACTION_PLUGINS}\n")
        try:
            result = ansible.run("poll_wait.yml", ansible.inventory(1), pipelining=True,
                                 extra_vars={"with_actions": with_actions})
            result.assert_ok(hosts=1)
        finally:
            ansible.stop_everything()
        polls[with_actions] = result.stdout.count("ASYNC POLL on ")
    assert polls == {True: 0, False: 1}, polls
