"""Figure 3, memory per running job: what a host keeps in memory while async jobs run.

Starts --jobs jobs (100) per flavour whose module is `exec sleep 120` (8 launches at a time, timed:
how long starting them all took), waits until every module runs and the number of other processes
stays the same for a second, then reads `/proc/PID/smaps_rollup` of each process the jobs left
(found by the bench's marker in their environment). The processes that are not the module (`sleep`)
are the async machinery: the sum of their PSS divided by the job count is the figure, their count
per job too. Then their process groups are killed.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from report import pair
from rig import FLAVOURS
from timing import BenchError, log

NUMBER = 3
TITLE = "memory per running job"


def job_processes(rig, tag, sleep_exe):
    """(machinery pids, module pids) of the jobs with this tag."""
    machinery, modules = [], []
    for pid in rig.tagged(tag):
        try:
            exe = os.readlink("/proc/%d/exe" % pid)
        except OSError:
            continue
        (modules if exe == sleep_exe else machinery).append(pid)
    return machinery, modules


def smaps(pid) -> dict:
    """{"rss": KiB, "pss": KiB} of a process, {} when it is gone."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                    out[parts[0][:-1].lower()] = int(parts[1])
    except OSError:
        pass
    return out


def steady(rig, flavour, tag, njobs, sleep_exe):
    """Wait until every module runs and the machinery's process count is unchanged for a second."""
    deadline = time.monotonic() + 90
    last = None
    while True:
        machinery, modules = job_processes(rig, tag, sleep_exe)
        now = (len(machinery), len(modules))
        if len(modules) == njobs and now == last:
            return machinery, modules
        if time.monotonic() > deadline:
            raise BenchError("%s: %d of %d jobs running after 90 s (%d other processes)"
                             % (flavour, len(modules), njobs, len(machinery)))
        last = now
        time.sleep(1.0)


def measure_flavour(rig, f, njobs, sleep_exe) -> dict:
    tag = "mem-" + f
    async_dir = rig.work / ("mem-" + f)
    t0 = time.monotonic()
    ex = ThreadPoolExecutor(max_workers=8)
    try:
        list(ex.map(lambda _: rig.launch(f, 600, rig.sleeper, async_dir, tag=tag), range(njobs)))
    finally:  # on an error or a signal: drop the queued launches, finish the running ones
        ex.shutdown(wait=True, cancel_futures=True)
    started = time.monotonic() - t0
    machinery, modules = steady(rig, f, tag, njobs, sleep_exe)
    sm = [smaps(p) for p in machinery]
    mods = [smaps(p) for p in modules]
    return {
        "jobs": njobs,
        "start_all_seconds": started,
        "machinery_processes": len(machinery),
        "processes_per_job": len(machinery) / njobs,
        "pss_mib_per_job": sum(s.get("pss", 0) for s in sm) / 1024 / njobs,
        "rss_mib_per_job": sum(s.get("rss", 0) for s in sm) / 1024 / njobs,
        "module_pss_mib_per_job": sum(s.get("pss", 0) for s in mods) / 1024 / njobs,
        "machinery_pss_kib": sorted(s.get("pss", 0) for s in sm),
    }


def measure(rig) -> None:
    njobs = rig.args.jobs
    sleep_exe = os.path.realpath(shutil.which("sleep") or "/bin/sleep")
    per = {}
    for f in FLAVOURS:
        try:
            per[f] = measure_flavour(rig, f, njobs, sleep_exe)
            log("memory %s: %d jobs, %d machinery processes, %.2f MiB PSS per job"
                % (f, njobs, per[f]["machinery_processes"], per[f]["pss_mib_per_job"]))
        finally:
            rig.sweep("mem-" + f)
    rig.results["memory"] = per


def rows(res) -> list[list]:
    if "memory" not in res:
        return []
    m = res["memory"]
    n = m["stock"]["jobs"]
    return [
        ["3 PSS per running job (%d jobs)" % n, "MiB", *pair(m, "pss_mib_per_job"), "≥ 10×"],
        ["3 processes per running job (besides the module)", "", *pair(m, "processes_per_job"), "ours 1"],
        ["3 time to start the %d jobs (8 launches at a time)" % n, "s", *pair(m, "start_all_seconds"), ""],
    ]


def notes(res) -> list[str]:
    return []
