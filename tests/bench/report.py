"""The bench's output: the table (printed, and in Markdown in results.md) and results.json.

Each figure module gives its rows, `[label, unit, stock, ours, target]` with a stats dict (median,
min–max) or a bare number for stock and ours, and the lines it adds under the table. A target is
checked here: `≥ N×`/`> N×` against stock/ours of the medians, `ours ≤ N s` against ours' worst
sample, `ours 1` against ours' value. chart.py shares ratio_text, pair and stepped (it runs in a
venv of its own, with matplotlib, and imports nothing else of the bench).
"""

from __future__ import annotations

import json
import re
from pathlib import Path


def stepped(v, below_one: str) -> str:
    """v with fewer decimals the larger it is (123, 12.3, 1.23); below 1 in the format given."""
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return below_one % v


def fmt(v) -> str:
    """A number of the table: whole numbers as such, else 123, 12.3, 1.23, 0.123, 0.0123."""
    if v is None:
        return "–"
    if float(v).is_integer():
        return "%d" % v
    return stepped(v, "%.3f" if abs(v) >= 0.01 else "%.4f")


def cell(s) -> str:
    if isinstance(s, dict):
        if s.get("n", 0) > 1:
            return "%s (%s–%s)" % (fmt(s["median"]), fmt(s["min"]), fmt(s["max"]))
        return fmt(s["median"])
    return fmt(s)


def value(s):
    """The median of a stats dict, or the bare number."""
    return s["median"] if isinstance(s, dict) else s


def ratio_text(a, b) -> str:
    """stock/ours, two figures at most: "65×", "2.6×", "0.47×"; "" when a value is missing."""
    if a is None or b is None:
        return ""
    if b <= 0:
        return "∞"
    r = a / b
    return ("%.0f×" % r) if r >= 10 else ("%.1f×" % r) if r >= 1 else ("%.2f×" % r)


def ratio(stock, ours) -> str:
    return ratio_text(value(stock), value(ours)) or "–"


def pair(by_flavour: dict, key=None, scale=1):
    """(stock, ours) of {flavour: value}, or of {flavour: {key: number}} divided by scale."""
    if key is None:
        return by_flavour["stock"], by_flavour["ours"]
    return by_flavour["stock"][key] / scale, by_flavour["ours"][key] / scale


def keyed_rows(res, spec) -> list[list]:
    """Rows from (label, unit, results key, target) for each key present: {flavour: stats}."""
    return [[label, unit, *pair(res[key]), target] for label, unit, key, target in spec if key in res]


def met(target: str, stock, ours) -> str:
    a, b = value(stock), value(ours)
    if not target or a is None or b is None:
        return ""
    m = re.match(r"[≥>] (\d+(?:\.\d+)?)×", target)
    if m:
        need = float(m.group(1))
        ok = (a / b >= need) if target.startswith("≥") else (a / b > need)
        return target + (" ✓" if ok else " ✗")
    m = re.match(r"ours ≤ (\d+(?:\.\d+)?) s", target)
    if m:
        worst = ours["max"] if isinstance(ours, dict) else b
        return target + (" ✓" if worst <= float(m.group(1)) else " ✗")
    m = re.match(r"ours ≥ stock − (\d+(?:\.\d+)?) s", target)
    if m:
        # Never sooner than stock: ours' earliest against stock's median.
        earliest = ours["min"] if isinstance(ours, dict) else b
        return target + (" ✓" if earliest >= a - float(m.group(1)) else " ✗")
    if target == "ours 1":
        return target + (" ✓" if b == 1 else " ✗")
    return target


def table(rows) -> tuple[str, str]:
    """The rows as plain text (aligned columns) and as a Markdown table."""
    head = ["figure", "unit", "stock median (min–max)", "ours median (min–max)", "stock/ours", "target"]
    body = [[l, u, cell(s), cell(o), ratio(s, o), met(t, s, o)] for l, u, s, o, t in rows]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    text = "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in [head] + body)
    md = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---", "---:", "---:", "---:", "---"]) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in body]
    return text, "\n".join(md)


def markdown(res, md_table, figure_notes) -> str:
    """results.md: where and when, the table, the figures' notes, then the bench's own notes."""
    meta = res["meta"]
    lines = [
        "Stock ansible-core %s modules vs this project's, measured on %d CPUs (Linux %s), %s UTC, "
        "load average %s at start; whole bench %.0f s." % (
            meta["ansible_core"], meta["cpus"], meta["kernel"], meta["date_utc"],
            " ".join(meta["loadavg_start"]), res["total_seconds"]),
        "",
        md_table,
        "",
    ]
    lines += figure_notes
    lines += res.get("notes", [])
    return "\n".join(lines) + "\n"


def write(out: Path, res, rows, figure_notes) -> None:
    """Write results.json and results.md to out, print the table."""
    out.mkdir(parents=True, exist_ok=True)
    text, md = table(rows)
    (out / "results.json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    (out / "results.md").write_text(markdown(res, md, figure_notes))
    print()
    print(text)
    print()
    print("bench: %.0f s; wrote %s and %s" % (res["total_seconds"], out / "results.json", out / "results.md"))
