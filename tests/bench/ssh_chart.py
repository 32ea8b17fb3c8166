"""Draws the SSH benchmark's table (ssh-results.md, written by ssh_bench.py) as an SVG bar chart:
one pair of bars per timed figure, stock and ours, as a share of stock's time, the ratio beside.
No plotting library: the SVG is written by hand.

    python3 tests/bench/ssh_chart.py target/bench/ssh-results.md target/bench/ssh-chart.svg
"""

from __future__ import annotations

import html
import re
import sys

STOCK, OURS = "#d9822b", "#2b6cb0"
ROW = re.compile(r"^\| (?P<figure>[^|]+) \| (?P<unit>s|ms) \| (?P<stock>[\d.]+)[^|]* \| (?P<ours>[\d.]+)[^|]* \|")


def rows(markdown: str):
    for line in markdown.splitlines():
        m = ROW.match(line)
        if m:
            label = m["figure"].replace("one async_status poll, pipelining on, ", "one poll, ")
            label = re.sub(r", median of \d+", "", label).replace("as ansible-playbook sees it (loop item to item)",
                                                                   "in ansible-playbook")
            yield label, m["unit"], float(m["stock"]), float(m["ours"])


def svg(data) -> str:
    width, left, bar, gap = 980, 470, 14, 14
    scale = width - left - 120
    height = 40 + len(data) * (2 * bar + gap) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           '<text x="10" y="20" font-size="14">Over SSH, stock vs ours: time as a share of stock\'s '
           '(shorter is faster)</text>',
           f'<rect x="{left}" y="28" width="10" height="10" fill="{STOCK}"/><text x="{left + 14}" y="37">stock</text>',
           f'<rect x="{left + 70}" y="28" width="10" height="10" fill="{OURS}"/><text x="{left + 84}" y="37">ours</text>']
    y = 50
    for label, unit, stock, ours in data:
        out.append(f'<text x="{left - 8}" y="{y + bar + 4}" text-anchor="end">{html.escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{scale}" height="{bar}" fill="{STOCK}"/>')
        out.append(f'<text x="{left + scale + 6}" y="{y + bar - 3}">{stock:g} {unit}</text>')
        share = ours / stock if stock else 0
        out.append(f'<rect x="{left}" y="{y + bar}" width="{scale * share:.1f}" height="{bar}" fill="{OURS}"/>')
        out.append(f'<text x="{left + scale * share + 6:.1f}" y="{y + 2 * bar - 3}">{ours:g} {unit} '
                   f'({stock / ours:.2f}× faster)</text>')
        y += 2 * bar + gap
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as f:
        data = list(rows(f.read()))
    with open(target, "w") as f:
        f.write(svg(data))


if __name__ == "__main__":
    main()
