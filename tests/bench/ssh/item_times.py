"""Callback for tests/bench/ssh_poll.py: the time each loop item of a task ended, one line per
item, in the file ASYNC_BENCH_ITEM_TIMES names."""

from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "item_times"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result):
        with open(os.environ["ASYNC_BENCH_ITEM_TIMES"], "a") as out:
            out.write(f"{result._task.get_name()}\t{time.monotonic()}\n")

    def v2_runner_item_on_ok(self, result):
        self._record(result)

    def v2_runner_on_start(self, host, task):
        with open(os.environ["ASYNC_BENCH_ITEM_TIMES"], "a") as out:
            out.write(f"START {task.get_name()}\t{time.monotonic()}\n")
