"""Figure 4, lateness after the time limit: how long past its `async:` limit a job is ended.

Jobs whose module is `exec sleep 60` (with the stock version's `_ansible_version` in it, as
ansible writes it among every module's arguments), --timeout-reps (3) per flavour with `async: 7`
and as many with `async: 2`, all running at once (the flavours take turns starting). Ours runs
twice: by default (ended when the stock wrapper of that version would have said so, never
sooner) and with `ASYNC_WRAPPER_EXACT_LIMIT=1` (at the limit). A thread reads every job's file
every 5 ms; a job's lateness is the time from invoking the wrapper until its file says
`Timeout exceeded`, minus the limit. A job file that says anything else is an error, as is a job
not ended within 25 s after the longest limit.
"""

from __future__ import annotations

import threading
import time

from report import pair
from rig import FLAVOURS
from timing import BenchError, stats

NUMBER = 4
TITLE = "lateness after the time limit"
LIMITS = (7, 2)
# The runs of each flavour: (name in the results, the task's environment).
RUNS = {"stock": [("stock", {})],
        "ours": [("ours", {}), ("ours_exact", {"ASYNC_WRAPPER_EXACT_LIMIT": "1"})]}


def poll(jobs, lock, done) -> None:
    """Until done: mark each pending job's lateness (or error) from its job file."""
    while not done.is_set():
        with lock:
            pending = [j for j in jobs if "late" not in j and "error" not in j]
        for j in pending:
            try:
                with open(j["file"]) as fh:
                    text = fh.read()
            except OSError:
                continue
            now = time.perf_counter()
            if "Timeout exceeded" in text:
                j["late"] = now - j["t0"] - j["limit"]
            elif text and '"started"' not in text:
                j["error"] = text[:300]
        time.sleep(0.005)


def measure(rig) -> None:
    jobs, lock = [], threading.Lock()
    done = threading.Event()
    thread = threading.Thread(target=poll, args=(jobs, lock, done), daemon=True)
    thread.start()
    try:
        for rep in range(rig.args.timeout_reps):
            for k, limit in enumerate(LIMITS):
                for f in rig.order(rep + k):
                    for kind, env in RUNS[f]:
                        t0 = time.perf_counter()
                        _, reply = rig.launch(f, limit, rig.sleeper60, rig.work / "timeout-async", tag="timeout",
                                              **env)
                        with lock:
                            jobs.append({"flavour": kind, "limit": limit, "t0": t0, "file": reply["results_file"]})
        deadline = time.monotonic() + max(LIMITS) + 25
        while time.monotonic() < deadline:
            with lock:
                if all("late" in j or "error" in j for j in jobs):
                    break
            time.sleep(0.1)
    finally:
        done.set()
        thread.join()
        rig.sweep("timeout")
    bad = [j for j in jobs if "late" not in j]
    if bad:
        raise BenchError("jobs not ended by their time limit: %r" % bad)
    kinds = [kind for f in FLAVOURS for kind, _ in RUNS[f]]
    rig.results["timeout"] = {
        str(limit): {kind: stats([j["late"] for j in jobs if j["flavour"] == kind and j["limit"] == limit])
                     for kind in kinds}
        for limit in LIMITS
    }


def rows(res) -> list[list]:
    if "timeout" not in res:
        return []
    out = []
    for limit in ("7", "2"):
        by_kind = res["timeout"][limit]
        out.append(["4 ended after the limit, async: %s (ours by default)" % limit, "s late", *pair(by_kind),
                    "ours ≥ stock − 0.6 s"])
        if "ours_exact" in by_kind:
            out.append(["4 ended after the limit, async: %s (ours, ASYNC_WRAPPER_EXACT_LIMIT=1)" % limit, "s late",
                        by_kind["stock"], by_kind["ours_exact"], "ours ≤ 0.1 s"])
    return out


def notes(res) -> list[str]:
    return []
