"""Figure 2, one async_status call: what one poll of a job costs on the host.

async_status, invoked as ansible invokes it (see harvest.py), reads the bench's finished job
(FINISHED_JOB in rig.py, as the command module leaves it); the reply must say finished, with the
job's stdout. Wall and CPU time as in figure 1, over --runs calls per flavour after one warm-up
call each. Also a third of --runs calls each on the same job in an async dir our async_wrapper
never used (a job of the stock wrapper, or a wiped cache): ours must answer there without what its
wrapper leaves, by the script alone. And --rss-runs calls under `/usr/bin/time -f %M` for the
peak RSS.
"""

from __future__ import annotations

import json
import shutil

from report import keyed_rows
from rig import FIXED_JID, FLAVOURS, by_flavour
from timing import BenchError, Run, reply_json

NUMBER = 2
TITLE = "async_status call"
ROWS = (  # label, unit, results key, target
    ("2 one async_status call", "ms", "status", "≥ 20×"),
    ("2 async_status call, CPU time (user + sys)", "ms", "status_cpu", ""),
    ("2 async_status call, job dir our wrapper never used", "ms", "status_bare", ""),
    ("2 async_status peak RSS", "MiB", "status_rss", ""),
)


def status_call(rig, flavour, argv=None, rss=False) -> Run:
    """One async_status call on the finished job, its reply checked."""
    r = rig.call(argv or rig.status_argv[flavour], rig.env(tag="status"), rss)
    reply = reply_json(r.out)
    if r.rc != 0 or reply.get("finished") not in (True, 1) or reply.get("stdout") != "hello":
        raise BenchError("%s async_status gave rc=%s %s %s" % (flavour, r.rc, r.out, r.err))
    return r


def bare_argv(rig) -> list[str]:
    """Ours, invoked on a copy of the finished job in an async dir its wrapper never used: the
    module text ansible shipped, with that dir in its arguments."""
    bare = rig.work / "status-bare"
    bare.mkdir(mode=0o700)
    shutil.copy2(rig.status_dir / FIXED_JID, bare / FIXED_JID)
    module = rig.work / "AnsiballZ_async_status-bare"
    shipped_args = rig.status_args.read_text()
    args = json.loads(shipped_args)
    args["_async_dir"] = str(bare)
    module.write_text(rig.status_module_text.replace(shipped_args, json.dumps(args)))
    return rig.status_argv["ours"][:-1] + [str(module)]


def measure(rig) -> None:
    ours_bare = bare_argv(rig)
    for f in FLAVOURS:  # warm-up
        status_call(rig, f)
    status_call(rig, "ours", ours_bare)
    wall, cpu = rig.timed_calls("Figure 2", lambda f: status_call(rig, f))
    bare = rig.alternating(max(1, rig.args.runs // 3), lambda f, i: status_call(
        rig, f, ours_bare if f == "ours" else None).seconds * 1000)
    if rig.have_time:
        rss = rig.alternating(rig.args.rss_runs, lambda f, i: status_call(rig, f, rss=True).maxrss_kib / 1024)
        rig.results["status_rss"] = by_flavour(rss)
    rig.results["status"] = by_flavour(wall)
    rig.results["status_cpu"] = by_flavour(cpu)
    rig.results["status_bare"] = by_flavour(bare)


def rows(res) -> list[list]:
    return keyed_rows(res, ROWS)


def notes(res) -> list[str]:
    return []
