"""What ansible ships to a host and how it runs it, for each flavour: the bench's first phase.

playbooks/harvest.yml runs once per flavour with `-vvv` and ANSIBLE_KEEP_REMOTE_FILES=1: an async
task, 5 async_status calls, a cleanup and a status call on the bench's fixed finished job. From its
output the bench reads the `PUT` lines (which files ansible copied for which task: their sizes are
figure 5) and the `EXEC` lines, and keeps the payloads ansible built: the stock AnsiballZ
async_wrapper and async_status, and our async_status with its arguments written in (a JSON-args
module). Figures 1–4 invoke those files as ansible does: async_wrapper as `<#! interpreter of the
file> FILE JID LIMIT MODULE _` (the protocol of 2.19), async_status as `python3
AnsiballZ_async_status.py` (stock) or `/bin/sh AnsiballZ_async_status` (ours).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rig import FIXED_JID, FLAVOURS, HERE, LIBRARY
from timing import BenchError, run_measured


def interpreter(path: Path) -> list[str]:
    """The argv prefix ansible uses for a file: its #! line split on blanks (none for a binary)."""
    with open(path, "rb") as f:
        head = f.readline(4096)
    if head.startswith(b"#!"):
        return head[2:].decode().split()
    return []


def json_args_line(module_text: str) -> str:
    """The arguments ansible wrote into our async_status (the line after the here-document's
    start)."""
    lines = module_text.splitlines()
    start = next(i for i, line in enumerate(lines) if "<<'ARGS'" in line)
    return lines[start + 1]


def transfers(output: str) -> tuple[dict, dict]:
    """({task: [remote path PUT]}, {task: [command EXEC]}) from ansible-playbook -vvv's output."""
    task, puts, execs = None, {}, {}
    for line in output.splitlines():
        m = re.match(r"TASK \[(.*?)\]", line)
        if m:
            task = m.group(1)
            continue
        m = re.match(r"<[^>]*> PUT (\S+) TO (\S+)\s*$", line)
        if m:
            puts.setdefault(task, []).append(m.group(2))
            continue
        m = re.match(r"<[^>]*> EXEC (.*)$", line)
        if m:
            execs.setdefault(task, []).append(m.group(1))
    return puts, execs


def harvest(rig, flavour) -> dict:
    """Run harvest.yml with -vvv and kept remote files: what ansible copies, and how it runs it."""
    h = rig.work / ("harvest-" + flavour)
    h.mkdir()
    inv = h / "inventory"
    inv.write_text("host ansible_connection=local ansible_python_interpreter=%s ansible_async_dir=%s\n"
                   % (rig.python, rig.status_dir))
    env = rig.ansible_env(flavour, "harvest", ANSIBLE_KEEP_REMOTE_FILES=1, ANSIBLE_REMOTE_TEMP=h / "remote")
    r = run_measured([str(rig.venv_bin / "ansible-playbook"), "-vvv", "-i", str(inv),
                      "-e", "fixed_jid=" + FIXED_JID, str(HERE / "playbooks" / "harvest.yml")],
                     env, cwd=str(h), timeout=300)
    (h / "output.txt").write_text(r.out + r.err)
    if r.rc != 0 or "failed=0" not in r.out:
        raise BenchError("harvest playbook (%s) failed:\n%s" % (flavour, (r.out + r.err)[-3000:]))
    puts, execs = transfers(r.out)
    rig.sweep("harvest")
    start = puts.get("bench start", [])
    wrapper = [p for p in start if Path(p).name.startswith("async_wrapper")]
    fixed = puts.get("bench fixed status", [])
    status_calls = len([p for p in puts.get("bench status", []) if "async_status" in Path(p).name])
    if len(wrapper) != 1 or status_calls != 5:
        raise BenchError("harvest (%s): unexpected PUTs %r" % (flavour, puts))
    if (flavour == "ours") == wrapper[0].endswith(".py"):
        raise BenchError("harvest (%s): ansible shipped %s: the wrong async_wrapper" % (flavour, wrapper[0]))
    info = {
        "puts": {t: [[Path(p).name, os.path.getsize(p)] for p in ps] for t, ps in puts.items()},
        "exec": {t: [rig.anon(c) for c in cs] for t, cs in execs.items()},
        "wrapper_payload": wrapper[0],
        "wrapper_bytes": os.path.getsize(wrapper[0]),
        "module_payload_bytes": sum(os.path.getsize(p) for p in start if p != wrapper[0]),
        "status_bytes_per_call": sum(os.path.getsize(p) for p in puts["bench status"]) / 5,
        "cleanup_bytes": sum(os.path.getsize(p) for p in puts.get("bench cleanup", [])),
        "fixed_status_files": {Path(p).name: p for p in fixed},
    }
    info["lifecycle_bytes"] = info["wrapper_bytes"] + 5 * info["status_bytes_per_call"] + info["cleanup_bytes"]
    return info


def fixed_status_payload(info: dict, flavour: str) -> Path:
    """The async_status file ansible shipped for the status call on the fixed finished job."""
    found = [Path(p) for n, p in info["fixed_status_files"].items() if n.startswith("AnsiballZ_async_status")]
    if len(found) != 1:
        raise BenchError("no %s async_status payload harvested: %r" % (flavour, info["fixed_status_files"]))
    return found[0]


def prepare(rig) -> None:
    """Harvest both flavours; set the rig's invocations of async_wrapper and async_status."""
    rig.harvested = {f: harvest(rig, f) for f in FLAVOURS}
    stock_wrapper = Path(rig.harvested["stock"]["wrapper_payload"])
    stock_status = fixed_status_payload(rig.harvested["stock"], "stock")
    # Ours is a JSON-args module: ansible wrote the arguments into the text it shipped.
    rig.status_module_text = fixed_status_payload(rig.harvested["ours"], "ours").read_text()
    rig.status_args = rig.work / "status-args.json"
    rig.status_args.write_text(json_args_line(rig.status_module_text))
    ours_wrapper = LIBRARY / "async_wrapper"
    ours_status = rig.work / "AnsiballZ_async_status"
    ours_status.write_text(rig.status_module_text)
    rig.wrapper_argv = {
        "stock": interpreter(stock_wrapper) + [str(stock_wrapper)],
        "ours": interpreter(ours_wrapper) + [str(ours_wrapper)],
    }
    rig.status_argv = {
        "stock": interpreter(stock_status) + [str(stock_status)],
        "ours": interpreter(ours_status) + [str(ours_status)],
    }
    rig.invocations = {
        "async_wrapper": {f: rig.anon(" ".join(a)) + " JID LIMIT MODULE _" for f, a in rig.wrapper_argv.items()},
        "async_status": {f: rig.anon(" ".join(a)) for f, a in rig.status_argv.items()},
    }
