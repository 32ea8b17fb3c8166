"""Callback for tests/bench/ssh_bench.py's collect figure: when each task starts, when it ends on
each host, and the end times its jobs printed (a loop's or a wait's `results`, each with the
`date +%s.%N` of its job in `stdout`); JSON lines in the file ASYNC_BENCH_PHASE_TIMES names."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "phase_times"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, record):
        with open(os.environ["ASYNC_BENCH_PHASE_TIMES"], "a") as out:
            out.write(json.dumps(record) + "\n")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._write({"event": "task", "task": task.get_name(), "time": time.time()})

    def _host_done(self, result, failed):
        ends = []
        for item in result._result.get("results") or []:
            try:
                ends.append(float(str(item.get("stdout", "")).strip()))
            except (AttributeError, ValueError):
                pass
        self._write({"event": "done", "task": result._task.get_name(), "host": result._host.get_name(),
                     "time": time.time(), "failed": failed, "job_ends": ends})

    def v2_runner_on_ok(self, result):
        self._host_done(result, False)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._host_done(result, True)

    def v2_playbook_on_stats(self, stats):
        self._write({"event": "stats", "time": time.time()})
