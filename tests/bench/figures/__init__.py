"""The figures of bench.py, one module each, in the order they are measured and tabled.

Each module has NUMBER (what `--only` selects), TITLE (formatted with the options), a docstring
saying what it measures and how, and three functions:

- measure(rig): runs with the Rig of rig.py after harvest.prepare(); puts its figures into
  rig.results (what results.json holds) and notes into rig.notes;
- rows(res): its rows of the table, `[label, unit, stock, ours, target]` (see report.py), none
  when it was not measured;
- notes(res): the lines it adds under the table in results.md.
"""

from figures import bytes_copied, lateness, launch, memory, playbook, progress, status_call

ALL = (launch, status_call, memory, lateness, bytes_copied, playbook, progress)
