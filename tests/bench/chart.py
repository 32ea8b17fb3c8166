"""Draws target/bench/chart.png from target/bench/results.json (written by bench.py).

Run with the bench venv that tests/bench/run.sh creates (matplotlib pinned there):

    .venv/bench/bin/python tests/bench/chart.py target/bench/results.json target/bench/chart.png

One panel per figure: grouped bars, stock vs ours, height = median, whiskers = min–max, the
ratio stock/ours under each group's label. Panels whose values span a wide range use a log scale.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STOCK = "#d9822b"
OURS = "#2b6cb0"


def triple(s):
    """(median, min, max) of a stats dict or a bare number."""
    if isinstance(s, dict):
        return s["median"], s["min"], s["max"]
    return s, s, s


def ratio_text(a, b):
    if a is None or b is None:
        return ""
    if b <= 0:
        return "∞"
    r = a / b
    if r >= 10:
        return "%.0f×" % r
    if r >= 1:
        return "%.1f×" % r
    return "%.2f×" % r


def label(v):
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    if v >= 1:
        return "%.2f" % v
    return "%.2g" % v


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
    g = res.get

    if g("launch"):
        panel(axes[0], "1 · async_wrapper launch", "ms (log)", [
            ("wall, warm", res["launch"]["stock"], res["launch"]["ours"]),
            ("CPU time", res["launch_cpu"]["stock"], res["launch_cpu"]["ours"]),
            ("wall, first\njob on host", res["launch_cold"]["stock"], res["launch_cold"]["ours"]),
        ])
    else:
        axes[0].set_visible(False)
    if g("status"):
        panel(axes[1], "2 · one async_status call", "ms (log)", [
            ("wall", res["status"]["stock"], res["status"]["ours"]),
            ("CPU time", res["status_cpu"]["stock"], res["status_cpu"]["ours"]),
            ("wall, dir our\nwrapper never used", res["status_bare"]["stock"], res["status_bare"]["ours"]),
        ])
    else:
        axes[1].set_visible(False)
    rss = []
    if g("launch_rss"):
        rss.append(("async_wrapper", res["launch_rss"]["stock"], res["launch_rss"]["ours"]))
    if g("status_rss"):
        rss.append(("async_status", res["status_rss"]["stock"], res["status_rss"]["ours"]))
    if rss:
        panel(axes[2], "1–2 · peak RSS of one call", "MiB (log)", rss)
    else:
        axes[2].set_visible(False)
    if g("memory"):
        m = res["memory"]
        n = m["stock"]["jobs"]
        panel(axes[3], "3 · memory per running job (%d jobs)" % n, "MiB PSS (log)", [
            ("PSS of the async\nmachinery per job", m["stock"]["pss_mib_per_job"], m["ours"]["pss_mib_per_job"]),
        ])
        panel(axes[4], "3 · processes per running job", "processes besides the module", [
            ("async machinery", m["stock"]["processes_per_job"], m["ours"]["processes_per_job"]),
        ], log=False)
        panel(axes[5], "3 · starting the %d jobs" % n, "seconds (log)", [
            ("%d launches,\n8 at a time" % n, m["stock"]["start_all_seconds"], m["ours"]["start_all_seconds"]),
        ])
    else:
        for k in (3, 4, 5):
            axes[k].set_visible(False)
    if g("timeout"):
        t = res["timeout"]
        panel(axes[6], "4 · ended after the time limit", "seconds late (log)", [
            ("async: %s" % k, t[k]["stock"], t[k]["ours"]) for k in ("7", "2")
        ])
    else:
        axes[6].set_visible(False)
    if g("bytes"):
        b = res["bytes"]
        panel(axes[7], "5 · bytes copied to the host", "KB (log)", [
            ("async_wrapper", b["stock"]["wrapper_bytes"] / 1000, b["ours"]["wrapper_bytes"] / 1000),
            ("per status call", b["stock"]["status_bytes_per_call"] / 1000, b["ours"]["status_bytes_per_call"] / 1000),
            ("task lifecycle\n(1 + 5 + 1 calls)", b["stock"]["lifecycle_bytes"] / 1000, b["ours"]["lifecycle_bytes"] / 1000),
        ])
    else:
        axes[7].set_visible(False)
    if g("fleet"):
        fl = res["fleet"]
        groups = [("wall time", fl["wall"]["stock"], fl["wall"]["ours"])]
        if "controller_cpu" in fl:
            groups += [("controller\nCPU", fl["controller_cpu"]["stock"], fl["controller_cpu"]["ours"]),
                       ("host-side\nCPU", fl["host_cpu"]["stock"], fl["host_cpu"]["ours"])]
        panel(axes[8], "6 · ansible-playbook, %d hosts" % meta["params"]["hosts"], "seconds (log)", groups)
    else:
        axes[8].set_visible(False)

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
