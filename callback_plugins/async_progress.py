# -*- coding: utf-8 -*-
# ansible-async-rs: what a running async job is doing, one line per host under each ASYNC POLL line.
# MIT licence (see LICENSE).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
name: async_progress
type: notification
short_description: show what a running async job is doing under each ASYNC POLL line
description:
  - For every poll of a task with C(async) and C(poll), prints one line per host under ansible's
    C(ASYNC POLL) line, from the C(progress) that ansible-async-rs's C(async_status) adds to a
    running job's status, as a bar of the time used against the limit, the newest process's
    command (its name for a C(no_log) task), CPU and memory, the file being written with its size
    and its growth since the last poll, and the last line of the C(ASYNC_WRAPPER_TAIL) file.
  - Prints nothing for a status without C(progress) (ansible's own modules, a finished job).
  - Works beside any stdout callback; enable it with C(callbacks_enabled = async_progress).
requirements:
  - enable in configuration (C(callbacks_enabled))
"""

import re
import shutil

try:
    from collections.abc import Mapping
except ImportError:  # pragma: no cover (Python 2)
    from collections import Mapping

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

BAR = 10
# Control characters (terminal escapes among them) never reach the screen.
CONTROL = re.compile(u"[\x00-\x1f\x7f-\x9f]")


def size(n):
    """Bytes as a person reads them: 812, 3.1K, 24M, 1.2G."""
    n = float(n or 0)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            if not unit:
                return "%s%d" % (sign, n)
            return "%s%.1f%s" % (sign, n, unit) if n < 10 else "%s%d%s" % (sign, n, unit)
        n /= 1024.0


def duration(secs):
    secs = int(secs or 0)
    if secs < 60:
        return "%ds" % secs
    if secs < 3600:
        return "%dm%02ds" % (secs // 60, secs % 60)
    return "%dh%02dm" % (secs // 3600, secs % 3600 // 60)


def clean(text):
    return CONTROL.sub(u"?", u"%s" % (text,)).strip()


def bar(elapsed, limit):
    """The time used against the limit: `[####------] 1m05s/2m00s`; without a limit, the time."""
    if not limit:
        return duration(elapsed)
    done = max(0, min(BAR, int(round(BAR * float(elapsed) / float(limit)))))
    return "[%s%s] %s/%s" % ("#" * done, "-" * (BAR - done), duration(elapsed), duration(limit))


def line(host, status, progress, before):
    """The line for one host's poll; `before`: the sizes of the files written at the last poll
    (path to size), updated here. What matters most comes first, as the line is cut to the
    terminal's width: the time, CPU and memory, the file written, the tail, the command."""
    parts = [bar(status.get("elapsed"), status.get("time_limit"))]
    totals = progress.get("totals") or {}
    if isinstance(totals, Mapping) and totals:
        parts.append("cpu %.1fs mem %s" % (float(totals.get("cpu") or 0), size(totals.get("rss"))))
    writing = [item for item in progress.get("writing") or [] if isinstance(item, Mapping)]
    if writing:
        path, now = clean(writing[0].get("path")), writing[0].get("size") or 0
        grew = " (+%s)" % size(now - before[path]) if path in before else ""
        parts.append("writing %s %s%s" % (path.rsplit("/", 1)[-1], size(now), grew))
    before.clear()
    for item in writing:
        before[clean(item.get("path"))] = item.get("size") or 0
    tail = progress.get("tail")
    if isinstance(tail, Mapping):
        if tail.get("lines"):
            parts.append("| " + clean(tail["lines"][-1]))
        elif tail.get("error"):
            parts.append("| %s: %s" % (clean(tail.get("path")).rsplit("/", 1)[-1], clean(tail["error"])))
    processes = progress.get("processes") or []
    if processes and isinstance(processes[0], Mapping):
        newest = processes[0]
        parts.append("$ " + clean(newest.get("args") or newest.get("name") or "?"))
    return "  %s: %s" % (host, "  ".join(p for p in parts if p))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "async_progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        # (host, job id): the sizes of the files it was writing at its last poll.
        self._sizes = {}

    def _width(self):
        columns = getattr(self._display, "columns", None)
        if not columns:
            columns = shutil.get_terminal_size((80, 24)).columns
        return max(40, int(columns))

    def v2_runner_on_async_poll(self, result):
        status = getattr(result, "result", None)  # 2.19 on: `result`; before: `_result`
        if not isinstance(status, Mapping):
            status = getattr(result, "_result", None)
        host = getattr(result, "host", None) or getattr(result, "_host", None)
        if not isinstance(status, Mapping) or host is None:
            return
        progress = status.get("progress")
        if not isinstance(progress, Mapping):
            return
        name = host.get_name()
        before = self._sizes.setdefault((name, status.get("ansible_job_id")), {})
        text = line(name, status, progress, before)
        width = self._width()
        if len(text) > width:
            text = text[:width - 3] + "..."
        self._display.display(text, color=C.COLOR_DEBUG)

    def v2_runner_on_async_ok(self, result):
        self._forget(result)

    def v2_runner_on_async_failed(self, result):
        self._forget(result)

    def _forget(self, result):
        status = getattr(result, "result", None)
        if not isinstance(status, Mapping):
            status = getattr(result, "_result", None) or {}
        host = getattr(result, "host", None) or getattr(result, "_host", None)
        if host is not None:
            self._sizes.pop((host.get_name(), status.get("ansible_job_id")), None)
