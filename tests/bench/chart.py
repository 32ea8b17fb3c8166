"""Draws target/bench/chart.png from target/bench/results.json (written by bench.py).

Run with the bench venv that tests/bench/run.sh creates (matplotlib pinned there):

    .venv/bench/bin/python tests/bench/chart.py target/bench/results.json target/bench/chart.png

One panel per figure: grouped bars, stock vs ours, height = median, whiskers = min–max, the
ratio stock/ours under each group's label. Panels whose values span a wide range use a log scale.
It takes ratio_text, pair and the number steps from report.py (standard library only).
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from report import pair, ratio_text, stepped  # noqa: E402  (tests/bench/report.py: stdlib only)

STOCK = "#d9822b"
OURS = "#2b6cb0"


def triple(s):
    """(median, min, max) of a stats dict or a bare number."""
    if isinstance(s, dict):
        return s["median"], s["min"], s["max"]
    return s, s, s


def label(v):
    """A bar's median: 123, 12.3, 1.23, 0.12."""
    return stepped(v, "%.2g")


def keyed(res, spec):
    """Groups from (label, results key) for each key present: {flavour: stats}."""
    return [(name, *pair(res[key])) for name, key in spec if key in res]


def panel(ax, title, unit, groups, log=True):
    """groups: [(label, stock, ours)] with stats dicts or numbers. The ratio stock/ours goes
    under each group's label, each bar's median above it."""
    groups = [g for g in groups if g[1] is not None and g[2] is not None]
    if not groups:
        ax.set_visible(False)
        return
    width = 0.38
    values = []
    for k, (_, stock, ours) in enumerate(groups):
        for off, s, colour in ((-width / 2, stock, STOCK), (width / 2, ours, OURS)):
            med, lo, hi = triple(s)
            values += [med, lo, hi]
            ax.bar(k + off, med, width, color=colour, zorder=2)
            if hi != lo:
                ax.errorbar(k + off, med, yerr=[[med - lo], [hi - med]], fmt="none", ecolor="black",
                            elinewidth=1, capsize=3, zorder=3)
            ax.annotate(label(med), (k + off, hi), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8, color="#222222")
    if log and min(values) > 0:
        ax.set_yscale("log")
        ax.set_ylim(min(values) / 3, max(values) * 5)
    else:
        ax.set_ylim(0, max(values) * 1.2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(["%s\n%s" % (g[0], ratio_text(triple(g[1])[0], triple(g[2])[0])) for g in groups],
                       fontsize=9)
    for tick in ax.get_xticklabels():
        tick.set_fontweight("bold")
    ax.set_xlim(-0.7 if len(groups) > 1 else -1.2, len(groups) - 0.3 if len(groups) > 1 else 1.2)
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(unit, fontsize=9)
    ax.grid(axis="y", which="major", color="#dddddd", zorder=0)
    ax.tick_params(axis="y", labelsize=8)


def main() -> int:
    src, dst = sys.argv[1], sys.argv[2]
    res = json.load(open(src))
    meta = res["meta"]
    fig, axes = plt.subplots(3, 3, figsize=(15, 12))
    axes = axes.ravel()

    panel(axes[0], "1 · async_wrapper launch", "ms (log)", keyed(res, [
        ("wall, warm", "launch"), ("CPU time", "launch_cpu"), ("wall, first\njob on host", "launch_cold")]))
    panel(axes[1], "2 · one async_status call", "ms (log)", keyed(res, [
        ("wall", "status"), ("CPU time", "status_cpu"), ("wall, dir our\nwrapper never used", "status_bare")]))
    panel(axes[2], "1–2 · peak RSS of one call", "MiB (log)", keyed(res, [
        ("async_wrapper", "launch_rss"), ("async_status", "status_rss")]))
    m = res.get("memory")
    if m:
        n = m["stock"]["jobs"]
        panel(axes[3], "3 · memory per running job (%d jobs)" % n, "MiB PSS (log)", [
            ("PSS of the async\nmachinery per job", *pair(m, "pss_mib_per_job")),
        ])
        panel(axes[4], "3 · processes per running job", "processes besides the module", [
            ("async machinery", *pair(m, "processes_per_job")),
        ], log=False)
        panel(axes[5], "3 · starting the %d jobs" % n, "seconds (log)", [
            ("%d launches,\n8 at a time" % n, *pair(m, "start_all_seconds")),
        ])
    else:
        for k in (3, 4, 5):
            axes[k].set_visible(False)
    t = res.get("timeout")
    panel(axes[6], "4 · ended after the time limit", "seconds late (log)",
          [(label % k, t[k]["stock"], t[k][kind]) for k in ("7", "2")
           for label, kind in (("async: %s", "ours"), ("async: %s,\nexact", "ours_exact")) if kind in t[k]]
          if t else [])
    b = res.get("bytes")
    panel(axes[7], "5 · bytes copied to the host", "KB (log)", [
        ("async_wrapper", *pair(b, "wrapper_bytes", 1000)),
        ("per status call", *pair(b, "status_bytes_per_call", 1000)),
        ("task lifecycle\n(1 + 5 + 1 calls)", *pair(b, "lifecycle_bytes", 1000)),
    ] if b else [])
    panel(axes[8], "6 · ansible-playbook, %d hosts" % meta["params"]["hosts"], "seconds (log)", keyed(
        res.get("fleet", {}), [("wall time", "wall"), ("controller\nCPU", "controller_cpu"),
                               ("host-side\nCPU", "host_cpu")]))

    handles = [plt.Rectangle((0, 0), 1, 1, color=STOCK), plt.Rectangle((0, 0), 1, 1, color=OURS)]
    fig.legend(handles, ["stock ansible-core %s (Python)" % meta["ansible_core"], "ours (native)"],
               loc="upper right", ncol=2, fontsize=10, frameon=False)
    fig.suptitle("async_wrapper / async_status: stock vs native\nbars: median, whiskers: min–max, "
                 "ratio stock/ours under each label; lower is better", x=0.01, ha="left", fontsize=12)
    fig.text(0.01, 0.005, "%d CPUs, Linux %s, load average %s at start, %s UTC" % (
        meta["cpus"], meta["kernel"], " ".join(meta["loadavg_start"]), meta["date_utc"]),
        fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0.02, 1, 0.94))
    fig.savefig(dst, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
