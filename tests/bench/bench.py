"""Benchmark: ansible-core 2.19's stock async_wrapper/async_status against this project's.

Run from the repo root with the 2.19 controller venv (tests/bench/run.sh does):

    .venv/core-2.19/bin/python tests/bench/bench.py --out target/bench

Everything happens on this machine, in a private work dir under the system temp dir. Both
implementations are invoked exactly the way ansible invokes them on a host: the stock ones as the
AnsiballZ payloads that ansible-playbook itself produced (harvested once per run with
ANSIBLE_KEEP_REMOTE_FILES=1), ours as the files in library/. Timed runs alternate stock and ours.

Every process the bench starts carries ASYNC_BENCH_RUN=<id> in its environment; whatever is left
of them (detached jobs) is killed by process group at the end, on error too.

Writes results.json (raw numbers) and results.md (the table) to --out and prints the table.

This file runs the phases; each figure is a module of figures/ that says what it measures and how.
They share timing.py (running and timing one process), rig.py (the work dir, stock and ours side
by side, the sweep), harvest.py (what ansible ships and how it runs it) and report.py (the table).
ASYNC_BENCH_QUICK=1 makes the defaults small, for a run of a few minutes that checks the bench
itself; its figures mean little.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from pathlib import Path

import figures
import harvest
import report
from rig import LIBRARY, Rig
from timing import BenchError, log

# --option: (default, default with ASYNC_BENCH_QUICK=1)
DEFAULTS = {
    "runs": (30, 3), "phase_cap": (40, 40), "cold_runs": (5, 1), "rss_runs": (5, 1), "jobs": (100, 5),
    "timeout_reps": (3, 1), "fleet_runs": (3, 1), "hosts": (10, 2), "budget": (480, 480),
}


def options():
    quick = os.environ.get("ASYNC_BENCH_QUICK", "0") not in ("", "0")
    d = {k: v[1] if quick else v[0] for k, v in DEFAULTS.items()}
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="ASYNC_BENCH_QUICK=1 in the environment: the quick defaults %s."
                                % ", ".join("--%s %s" % (k.replace("_", "-"), v[1]) for k, v in DEFAULTS.items()
                                            if v[0] != v[1]))
    p.add_argument("--out", default="target/bench", help="where results.json and results.md go")
    p.add_argument("--runs", type=int, default=d["runs"], help="timed runs per flavour, figures 1 and 2")
    p.add_argument("--phase-cap", type=int, default=d["phase_cap"],
                   help="seconds: figures 1 and 2 stop their timed runs (after 10 each) past this")
    p.add_argument("--cold-runs", type=int, default=d["cold_runs"], help="launches with an empty async dir, figure 1")
    p.add_argument("--rss-runs", type=int, default=d["rss_runs"],
                   help="runs under /usr/bin/time for peak RSS, figures 1 and 2")
    p.add_argument("--jobs", type=int, default=d["jobs"], help="jobs running at once, figure 3")
    p.add_argument("--timeout-reps", type=int, default=d["timeout_reps"], help="jobs per flavour and limit, figure 4")
    p.add_argument("--fleet-runs", type=int, default=d["fleet_runs"], help="playbook runs per flavour, figure 6")
    p.add_argument("--hosts", type=int, default=d["hosts"], help="inventory size, figure 6")
    p.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                   help="figure 6 without the timing shell that splits controller and host CPU")
    p.add_argument("--budget", type=int, default=d["budget"],
                   help="seconds: figure 6 stops adding playbook runs (after the first pair) past this")
    p.add_argument("--only", default="", help="comma-separated figure numbers to run (default: all)")
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    return p.parse_args()


def loadavg() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def meta(rig, load_start) -> dict:
    import ansible.release
    return {
        "ansible_core": ansible.release.__version__,
        "controller_python": platform.python_version(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "params": {k: v for k, v in vars(rig.args).items() if k != "out"},
        "invocations": rig.invocations,
    }


def run(rig) -> dict:
    """The harvest, then each figure (those of --only): rig.results with the timings and meta."""
    load_start = loadavg()
    if float(load_start[0]) > (os.cpu_count() or 1):
        log("the machine is busy (load average %s on %d CPUs): timings will be inflated and noisy"
            % (" ".join(load_start), os.cpu_count()))
    t0 = rig.t0 = time.monotonic()
    only = set(rig.args.only.split(",")) if rig.args.only else None
    phases = [("harvest (what ansible ships and runs, both flavours)", harvest.prepare)]
    phases += [("figure %d: %s" % (m.NUMBER, m.TITLE.format(**vars(rig.args))), m.measure)
               for m in figures.ALL if only is None or str(m.NUMBER) in only]
    timings = {}
    for name, measure in phases:
        log(name)
        t = time.monotonic()
        measure(rig)
        timings[name] = round(time.monotonic() - t, 1)
        log("  done in %.1f s" % timings[name])
    rig.results["phase_seconds"] = timings
    rig.results["total_seconds"] = round(time.monotonic() - t0, 1)
    rig.results["meta"] = meta(rig, load_start)
    rig.results["notes"] = rig.notes
    return rig.results


def main() -> int:
    args = options()
    stop_signals = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def stop(signum, _frame):
        for sig in stop_signals:  # once: a second signal must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        log("interrupted by signal %d: stopping what the bench started" % signum)
        sys.exit(128 + signum)

    for sig in stop_signals:
        signal.signal(sig, stop)

    for f in ("async_wrapper", "async_status"):
        if not (LIBRARY / f).is_file():
            log("library/%s is missing: run `make build` first" % f)
            return 2
    rig = Rig(args)
    try:
        rig.setup()
        res = run(rig)
    except BenchError as e:
        log("FAILED: %s" % e)
        return 1
    finally:
        rig.close()

    rows = [row for m in figures.ALL for row in m.rows(res)]
    notes = [line for m in figures.ALL for line in m.notes(res)]
    report.write(Path(args.out), res, rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
