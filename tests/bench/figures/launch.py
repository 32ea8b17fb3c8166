"""Figure 1, wrapper launch: what starting one async job costs, as ansible waits for it.

async_wrapper runs with a tiny `#!/bin/sh` module (it echoes one JSON line), invoked as ansible
invokes it (see harvest.py). Wall time from spawning it until it has exited and closed stdout and
stderr, and its CPU time (user + sys of it and the children it waited for, from wait4), over
--runs launches per flavour into the same async dir, after one warm-up launch each (ours installs
its program cache there, both warm the page cache). Also --cold-runs launches each into an empty
async dir (the first job on a host: ours unpacks its program), and --rss-runs under
`/usr/bin/time -f %M` for the peak RSS. For scale: spawning `/bin/true` the same way, and GNU
time's peak RSS of `/bin/true`.
"""

from __future__ import annotations

from report import fmt, keyed_rows
from rig import FLAVOURS, by_flavour
from timing import peak_rss_kib, run_measured, stats

NUMBER = 1
TITLE = "wrapper launch"
ROWS = (  # label, unit, results key, target
    ("1 wrapper launch (invocation → reply + exit)", "ms", "launch", "≥ 50×"),
    ("1 wrapper launch, CPU time (user + sys)", "ms", "launch_cpu", ""),
    ("1 wrapper launch, first on the host (empty cache)", "ms", "launch_cold", ""),
    ("1 wrapper launch peak RSS", "MiB", "launch_rss", ""),
)


def measure(rig) -> None:
    warm_dir = rig.work / "launch-async"

    def launch(flavour, async_dir=warm_dir, rss=False):
        return rig.launch(flavour, 30, rig.tiny, async_dir, tag="launch", rss=rss)[0]

    for f in FLAVOURS:  # warm-up
        launch(f)
    wall, cpu = rig.timed_calls("Figure 1", launch)
    cold = rig.alternating(rig.args.cold_runs,
                           lambda f, i: launch(f, rig.work / ("cold-%s-%d" % (f, i))).seconds * 1000)
    if rig.have_time:
        rss = rig.alternating(rig.args.rss_runs, lambda f, i: launch(f, rss=True).maxrss_kib / 1024)
        floor, _ = peak_rss_kib(["/bin/true"], rig.env())
        rig.results["rss_floor_mib"] = floor / 1024
    else:
        rig.notes.append("peak RSS not measured: /usr/bin/time is not installed")
    base = [run_measured(["/bin/true"], rig.env()).seconds * 1000 for _ in range(10)]
    rig.results["launch"] = by_flavour(wall)
    rig.results["launch_cpu"] = by_flavour(cpu)
    rig.results["launch_cold"] = by_flavour(cold)
    if rig.have_time:
        rig.results["launch_rss"] = by_flavour(rss)
    rig.results["harness_spawn_ms"] = stats(base)
    rig.sweep("launch")


def rows(res) -> list[list]:
    return keyed_rows(res, ROWS)


def notes(res) -> list[str]:
    out = []
    if "harness_spawn_ms" in res:
        out.append("Spawning `/bin/true` the same way costs %s ms (included in figures 1 and 2). CPU time is "
                   "that of the invoked process and the children it waited for (a job's detached processes "
                   "are not counted, for either); unlike wall time it hardly depends on the machine's load."
                   % fmt(res["harness_spawn_ms"]["median"]))
    if "rss_floor_mib" in res:
        out.append("Peak RSS is GNU time's %%M; it reports %s MiB for `/bin/true`." % fmt(res["rss_floor_mib"]))
    return out
