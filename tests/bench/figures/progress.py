"""Figure 7, async_status on a running job of 100 processes: what its `progress` costs.

A job started by our async_wrapper whose module is a shell with 99 `sleep` children (100
processes under the supervisor), polled by each flavour's async_status as ansible invokes it
by ours' async_status as ansible invokes it (figure 2's module text, with this job's id and
async dir), which answers with `progress`, read from /proc; taking turns with the same call on
a copy of the job file without its `supervisor` (no /proc read, no progress): the difference of
the two medians is what `progress` adds to a poll (the goal: at most 2 ms). Stock has no
progress: its column is empty. Wall and CPU time as in figure 2.
"""

from __future__ import annotations

import json
import shutil
import time

from report import keyed_rows
from timing import BenchError, reply_json, stats

NUMBER = 7
TITLE = "async_status on a running job of 100 processes"
ROWS = (  # label, unit, results key, target
    ("7 async_status, running job of 100 processes (ours: with progress)", "ms", "progress_status", ""),
    ("7 the same, job file without its supervisor (no progress)", "ms", "progress_none", ""),
)
CHILDREN = 99


def argv_for(rig, async_dir, jid) -> list[str]:
    """Ours' async_status call as figure 2 makes it, for job `jid` in `async_dir`."""
    shipped = rig.status_args.read_text()
    args = json.loads(shipped)
    args["_async_dir"], args["jid"] = str(async_dir), jid
    module = rig.work / ("AnsiballZ_async_status-progress-%s" % async_dir.name)
    module.write_text(rig.status_module_text.replace(shipped, json.dumps(args)))
    return rig.status_argv["ours"][:-1] + [str(module)]


def call(rig, argv, want_progress):
    r = rig.call(argv, rig.env(tag="progress-status"))
    reply = reply_json(r.out)
    if r.rc != 0 or reply.get("finished") not in (False, 0):
        raise BenchError("async_status on the running job gave rc=%s %s %s" % (r.rc, r.out, r.err))
    if want_progress is not None and ("progress" in reply) != want_progress:
        raise BenchError("progress %s expected: %s" % ("" if want_progress else "not", r.out[:400]))
    return r, reply


def measure(rig) -> None:
    async_dir = rig.work / "progress-async"
    async_dir.mkdir(mode=0o700)
    module = rig.work / "mods" / "hundred"
    module.write_text('#!/bin/sh\n# {"_ansible_no_log": false}\nfor i in $(seq %d); do sleep 600 & done\nwait\n'
                      % CHILDREN)
    module.chmod(0o755)
    _, reply = rig.launch("ours", 600, module, async_dir, tag="progress")
    jid = reply["ansible_job_id"]
    try:
        ours = argv_for(rig, async_dir, jid)
        deadline = time.monotonic() + 60
        while True:  # until the shell has started every child
            _, status = call(rig, ours, True)
            if status["progress"]["totals"]["count"] >= CHILDREN + 1:
                break
            if time.monotonic() > deadline:
                raise BenchError("the job never had %d processes: %s" % (CHILDREN + 1, status["progress"]["totals"]))
            time.sleep(0.1)
        bare = rig.work / "progress-bare"
        bare.mkdir(mode=0o700)
        shutil.copytree(async_dir / ".bin", bare / ".bin")  # the cached program, as in the job's dir
        job = json.loads((async_dir / jid).read_text())
        job.pop("supervisor")
        (bare / jid).write_text(json.dumps(job))
        (bare / jid).chmod(0o600)
        argv_bare = argv_for(rig, bare, jid)
        call(rig, ours, True)  # warm-up
        call(rig, argv_bare, False)
        samples = {"with": [], "without": [], "cpu": []}
        t0 = time.monotonic()
        for i in range(rig.args.runs):  # the two take turns
            if i >= 10 and time.monotonic() - t0 > rig.args.phase_cap:
                rig.notes.append("Figure 7: %d of %d timed runs, stopped at the %d s cap."
                                 % (i, rig.args.runs, rig.args.phase_cap))
                break
            for kind in (("with", "without") if i % 2 == 0 else ("without", "with")):
                r, _ = call(rig, ours if kind == "with" else argv_bare, kind == "with")
                samples[kind].append(r.seconds * 1000)
                if kind == "with":
                    samples["cpu"].append(r.cpu * 1000)
        rig.results["progress_status"] = {"stock": None, "ours": stats(samples["with"])}
        rig.results["progress_status_cpu"] = {"stock": None, "ours": stats(samples["cpu"])}
        rig.results["progress_none"] = {"stock": None, "ours": stats(samples["without"])}
        rig.results["progress_bytes"] = len(json.dumps(status["progress"]))
    finally:
        rig.sweep(tag="progress")


def rows(res) -> list[list]:
    return keyed_rows(res, ROWS)


def notes(res) -> list[str]:
    if "progress_status" not in res:
        return []
    added = res["progress_status"]["ours"]["median"] - res["progress_none"]["ours"]["median"]
    return ["Figure 7: progress adds %.2f ms to a poll of a running job of 100 processes (median with − "
            "median without; goal ≤ 2 ms); its JSON was %d bytes." % (added, res["progress_bytes"])]
