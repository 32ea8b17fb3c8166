"""ansible-playbook's PLAY RECAP: one line per host of counters (ok=, changed=, failed=...)."""

from __future__ import annotations

import re

RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$")


def parse_recap(stdout: str) -> dict[str, dict[str, int]]:
    """host -> {counter: value} from the last PLAY RECAP in `stdout` ({} when there is none)."""
    recap: dict[str, dict[str, int]] = {}
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("PLAY RECAP")]
    if not starts:
        return recap
    for line in lines[starts[-1] + 1:]:
        m = RECAP_LINE.match(line.strip())
        if m:
            recap[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return recap


def assert_recap_ok(recap: dict[str, dict[str, int]], *, hosts: int | None = None,
                    allow_ignored: bool = True, see: str = "") -> None:
    """A recap with every host neither failed nor unreachable (`hosts`: that many of them;
    not `allow_ignored`: no ignored errors either). `see` ends each failure message."""
    assert recap, f"no PLAY RECAP in the output. {see}"
    if hosts is not None:
        assert len(recap) == hosts, (sorted(recap), see)
    for host, counts in recap.items():
        assert counts["failed"] == 0 and counts["unreachable"] == 0, (host, counts, see)
        if not allow_ignored:
            assert counts.get("ignored", 0) == 0, (host, counts, see)
