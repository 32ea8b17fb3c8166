"""Where things are: the repo, and what `make build` writes that the tests run."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
# What users drop into a playbook's library/: async_wrapper, async_status, async_job.
LIBRARY = REPO / "library"
# The static programs the launchers carry, one per architecture (ansible-async.<arch>).
PROGRAMS = REPO / "target" / "programs"
