"""SSH operations per async step, ours against ansible's stock modules, read from -vvv.

ansible prints one `SSH: EXEC` line per SSH operation (a command, an sftp upload). The
playbook opcount.yml has one task per step: launch (`poll: 0`), one async_status poll, one
`mode: cleanup`, and a `poll: 1` task (launch, the controller's polls, its cleanup). Each
configuration runs once with this project's library and once with ansible's stock modules:
ours may never cost more operations than stock's, and with pipelining on a poll is one
operation (plus ansible's own `echo ~` when the async dir is not absolute).
"""

from __future__ import annotations

import re
import shutil
import uuid

import pytest

from ssh_harness import Ansible, home_of, require_user
from test_async_ssh import ASYNC_USER, stock_library

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


def operations(stdout: str) -> dict[str, list[str]]:
    """The SSH operations of each `OPS <step>` task, in order, in a word or two each."""
    steps: dict[str, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        task = TASK.match(line)
        if task:
            name = task.group(1)
            current = name[4:] if name.startswith("OPS ") else None
            if current:
                steps[current] = []
            continue
        found = SSH_OPERATION.match(line)
        if found and current:
            steps[current].append(kind(line))
    return steps


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


@pytest.mark.parametrize("become", [False, True], ids=["root", "become"])
@pytest.mark.parametrize("pipelining", [False, True], ids=["pipelining-off", "pipelining-on"])
def test_no_more_ssh_operations_than_stock(ansible, pipelining, become):
    if become:
        require_user(ASYNC_USER)
        async_dir = str(home_of(ASYNC_USER) / f".ansible_async-{ansible.mark}")
    else:
        async_dir = str(ansible.async_dir)
    try:
        ours = run_counted(ansible, pipelining=pipelining, become=become, async_dir=async_dir, stock=False)
        stock = run_counted(ansible, pipelining=pipelining, become=become, async_dir=async_dir, stock=True)
    finally:
        if become:
            shutil.rmtree(async_dir, ignore_errors=True)
    table = "\n".join(f"{step:8} ours {len(ours[step]):2}  stock {len(stock[step]):2}  "
                      f"ours: {', '.join(ours[step])}" for step in STEPS)
    print(f"\nSSH operations, ansible-core {ansible.controller.version}, pipelining "
          f"{'on' if pipelining else 'off'}, {'become' if become else 'root'}:\n{table}")
    for step in STEPS:
        assert len(ours[step]) <= len(stock[step]), (step, ours[step], stock[step])
    if pipelining:
        # An absolute async dir: no `echo ~`; the poll and the cleanup are one pipelined exec each.
        assert ours["poll"] == stock["poll"] == ["exec (pipelined)"], (ours["poll"], stock["poll"])
        assert ours["cleanup"] == ["exec (pipelined)"], ours["cleanup"]
    else:
        # mkdir, upload, chmod, exec, rm: what any module call costs without pipelining
        # (become to an unprivileged user adds ansible's own permission fix-ups).
        assert len(ours["poll"]) == len(stock["poll"]), (ours["poll"], stock["poll"])


def test_poll_with_the_default_async_dir_costs_echo_home_and_one_exec(ansible):
    """ansible expands a `~` async dir with one `echo ~` of its own before each async_status
    call (not ours to remove); the poll itself is still one pipelined exec."""
    ours = run_counted(ansible, pipelining=True, become=False, async_dir="~/.ansible_async-" + ansible.mark,
                       stock=False)
    try:
        for step in ("poll", "cleanup"):
            assert ours[step] == ["echo ~", "exec (pipelined)"], ours[step]
    finally:
        shutil.rmtree(home_of("root") / f".ansible_async-{ansible.mark}", ignore_errors=True)


def test_async_job_call(ansible):
    """async_job is a binary module: ansible never pipelines those and uploads an arguments
    file (mkdir, two uploads, chmod, exec, rm)."""
    ansible.async_dir.mkdir(mode=0o700)
    result = ansible.run("opcount_job.yml", ansible.inventory(1), pipelining=True, args=("-vvv",))
    result.assert_ok(hosts=1)
    counted = operations(result.stdout)["async_job"]
    print(f"\nSSH operations of one async_job call: {len(counted)}: {counted}")
    assert counted == ["mkdir", "upload", "upload", "chmod", "exec", "rm"], counted
