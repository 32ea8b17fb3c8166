"""Figure 5, bytes copied per task lifecycle: what ansible ships to the host for an async task.

No runs of its own: the sizes of the files ansible `PUT` on the host in the harvest run
(harvest.py: `ansible-playbook -vvv` with ANSIBLE_KEEP_REMOTE_FILES=1), per task of
playbooks/harvest.yml: the async task's async_wrapper file, each of 5 `async_status` calls, and the
cleanup call. A task's lifecycle is the wrapper, 5 status calls and the cleanup. The module's own
payload is shipped with the wrapper, the same for both flavours, and is not counted. results.json
also lists every PUT and EXEC by task, and the sizes of the files in library/.
"""

from __future__ import annotations

from report import fmt, pair
from rig import FLAVOURS, LIBRARY

NUMBER = 5
TITLE = "bytes copied"


def measure(rig) -> None:
    out = {}
    for f in FLAVOURS:
        h = rig.harvested[f]
        out[f] = {k: h[k] for k in ("wrapper_bytes", "status_bytes_per_call", "cleanup_bytes",
                                    "lifecycle_bytes", "module_payload_bytes", "puts", "exec")}
    out["library_files"] = {p.name: p.stat().st_size for p in sorted(LIBRARY.iterdir()) if p.is_file()}
    rig.results["bytes"] = out


def rows(res) -> list[list]:
    if "bytes" not in res:
        return []
    b = res["bytes"]
    return [
        ["5 async_wrapper file copied", "KB", *pair(b, "wrapper_bytes", 1000), ""],
        ["5 copied per async_status call", "KB", *pair(b, "status_bytes_per_call", 1000), ""],
        ["5 copied per task lifecycle (wrapper + 5 status + cleanup)", "KB", *pair(b, "lifecycle_bytes", 1000),
         "≥ 1×"],
    ]


def notes(res) -> list[str]:
    if "bytes" not in res:
        return []
    return ["Figure 5 counts the files ansible PUT on the host (ansible-playbook -vvv, kept with "
            "ANSIBLE_KEEP_REMOTE_FILES=1); the module's own payload (%s KB, the same for both) is "
            "not counted." % fmt(res["bytes"]["stock"]["module_payload_bytes"] / 1000)]
