"""SSH operations per async step, ours against ansible's stock modules, read from -vvv.

ansible prints one `SSH: EXEC` line per SSH operation (a command, an sftp upload). The
playbook opcount.yml has one task per step: launch (`poll: 0`), one async_status poll, one
`mode: cleanup`, and a `poll: 1` task (launch, the controller's polls, its cleanup). Each
configuration runs with this project's library and (ansible-core 2.19; ASYNC_SSH_STOCK=all: both)
with ansible's stock modules: ours may never cost more operations than stock's, and with pipelining on a poll is one
operation (plus ansible's own `echo ~` when the async dir is not absolute).
"""

from __future__ import annotations

import re
import shutil
import uuid

import pytest

from harness.become_users import ASYNC_USER
from harness.ssh_sandbox import STOCK, Ansible, home_of, require_user, stock_library

# Stock's counts come from a stock run with these controllers (its own run on both with
# ASYNC_SSH_STOCK=all); elsewhere from stock_counts(), which those runs check.
STOCK_CONTROLLERS = ("2.19", "2.21") if STOCK == "all" else ("2.19",)

STEPS = ("launch", "poll", "cleanup", "poll1")
TASK = re.compile(r"^TASK \[(.*?)\]")
SSH_OPERATION = re.compile(r"^<[^>]+> SSH: EXEC (ssh|sftp|scp) ")


def kind(line: str) -> str:
    """What one `SSH: EXEC` line does, in a word or two."""
    if " EXEC ssh " not in line:
        return "upload"
    command = line[line.find("'/bin/sh -c"):]
    for needle, name in (("umask 77 && mkdir", "mkdir"), ("echo ~", "echo ~"), ("setfacl ", "setfacl"),
                         ("chmod ", "chmod"), ("chown ", "chown"), ("rm -f -r ", "rm")):
        if needle in command.split("BECOME-SUCCESS")[0]:
            return name
    return "exec" if "/ansible-tmp-" in command else "exec (pipelined)"


def task_lines(stdout: str) -> dict[str, list[str]]:
    """The output lines under each `OPS <step>` task header."""
    steps: dict[str, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        task = TASK.match(line)
        if task:
            name = task.group(1)
            current = name[4:] if name.startswith("OPS ") else None
            if current:
                steps[current] = []
        elif current:
            steps[current].append(line)
    return steps


def operations(stdout: str) -> dict[str, list[str]]:
    """The SSH operations of each `OPS <step>` task, in order, in a word or two each."""
    return {step: [kind(line) for line in lines if SSH_OPERATION.match(line)]
            for step, lines in task_lines(stdout).items()}


def run_counted(ansible: Ansible, *, pipelining: bool, become: bool, async_dir: str, stock: bool):
    extra = {"opcount_become": become, "become_to": ASYNC_USER if become else "root",
             "test_async_dir": async_dir}
    kwargs = {"library": stock_library(ansible, f"stock-library-{uuid.uuid4().hex[:6]}")} if stock else {}
    result = ansible.run("opcount.yml", ansible.inventory(1), pipelining=pipelining, extra_vars=extra,
                         args=("-vvv",), **kwargs)
    result.assert_ok(hosts=1)
    counted = operations(result.stdout)
    assert sorted(counted) == sorted(STEPS), counted
    return counted


def status_calls(ops: list[str]) -> int:
    """How many async_status calls a `poll: N` step made (after the wrapper's exec): it polls
    until the job is over, so on a slow machine more than once."""
    return sum(1 for op in ops if op.startswith("exec")) - 1


def stock_counts(pipelining: bool, become: bool, calls: int) -> dict[str, int]:
    """What stock's steps cost, as measured with ansible-core 2.19 and 2.21 (the test checks
    it against a stock run on STOCK_CONTROLLERS); `calls`: async_status calls of `poll: 1`."""
    launch = 7 if become else 5  # mkdir, 2 uploads, chmod (+ setfacl, chown for become), exec
    poll = 1 if pipelining else launch  # pipelined exec; or mkdir, upload, fix-ups, exec, rm
    # poll: 1 = launch, then the polls and the cleanup: without pipelining they share one tmp
    # dir (made by the first, removed after the last).
    polled = calls if pipelining else (poll - 1) + (calls - 1) * (poll - 2) + 1
    return {"launch": launch, "poll": poll, "cleanup": poll, "poll1": launch + polled}


@pytest.mark.parametrize("become", [False, True], ids=["root", "become"])
@pytest.mark.parametrize("pipelining", [False, True], ids=["pipelining-off", "pipelining-on"])
def test_no_more_ssh_operations_than_stock(ansible, pipelining, become):
    if become:
        require_user(ASYNC_USER)
        async_dir = str(home_of(ASYNC_USER) / f".ansible_async-{ansible.mark}")
    else:
        async_dir = str(ansible.async_dir)
    with_stock = ansible.controller.version in STOCK_CONTROLLERS
    try:
        ours = run_counted(ansible, pipelining=pipelining, become=become, async_dir=async_dir, stock=False)
        if with_stock:
            stock_ops = run_counted(ansible, pipelining=pipelining, become=become, async_dir=async_dir,
                                    stock=True)
            stock = {step: len(ops) for step, ops in stock_ops.items()}
            assert stock == stock_counts(pipelining, become, status_calls(stock_ops["poll1"])), stock_ops
        # What stock would cost for the same number of polls as ours made.
        stock = stock_counts(pipelining, become, status_calls(ours["poll1"]))
    finally:
        if become:
            shutil.rmtree(async_dir, ignore_errors=True)
    table = "\n".join(f"{step:8} ours {len(ours[step]):2}  stock {stock[step]:2}  "
                      f"ours: {', '.join(ours[step])}" for step in STEPS)
    print(f"\nSSH operations, ansible-core {ansible.controller.version}, pipelining "
          f"{'on' if pipelining else 'off'}, {'become' if become else 'root'}"
          f"{' (stock measured too)' if with_stock else ''}:\n{table}")
    for step in STEPS:
        assert len(ours[step]) <= stock[step], (step, ours[step], stock[step])
    if pipelining:
        # An absolute async dir: no `echo ~`; the poll and the cleanup are one pipelined exec each.
        assert ours["poll"] == ours["cleanup"] == ["exec (pipelined)"], ours
    else:
        # Without pipelining, an async_status call costs what any module call does.
        assert len(ours["poll"]) == stock["poll"], ours["poll"]


def test_poll_with_the_default_async_dir_costs_echo_home_and_one_exec(ansible):
    """ansible expands a `~` async dir with one `echo ~` of its own before each async_status
    call (not ours to remove); the poll itself is still one pipelined exec."""
    ours = run_counted(ansible, pipelining=True, become=False, async_dir="~/.ansible_async-" + ansible.mark,
                       stock=False)
    try:
        for step in ("poll", "cleanup"):
            assert ours[step] == ["echo ~", "exec (pipelined)"], ours[step]
    finally:
        shutil.rmtree(ansible.sshd.root_home / f".ansible_async-{ansible.mark}", ignore_errors=True)


@pytest.mark.parametrize("pipelining", [False, True], ids=["pipelining-off", "pipelining-on"])
def test_async_job_call(ansible, pipelining):
    """async_job is a JSON-args script like async_status: with pipelining on, one call (a list,
    or a wait for several jobs) is one SSH command; off, what any module call costs."""
    ansible.async_dir.mkdir(mode=0o700)
    result = ansible.run("opcount_job.yml", ansible.inventory(1), pipelining=pipelining, args=("-vvv",))
    result.assert_ok(hosts=1)
    counted = operations(result.stdout)
    print(f"\nSSH operations of one async_job call: {counted}")
    for step in ("async_job", "wait"):
        if pipelining:
            assert counted[step] == ["exec (pipelined)"], counted
        else:
            assert counted[step] == ["mkdir", "upload", "chmod", "exec", "rm"], counted
