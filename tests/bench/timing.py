"""Running one process and timing it, as ansible's local connection runs a command; statistics of
the samples. Shared by every figure of bench.py.

A run is timed from spawning it until it has exited and closed its stdout and stderr (ansible
reads both to EOF, then waits for it); its CPU time comes from wait4 (the process and the children
it waited for). Peak RSS is measured in separate runs under GNU time.
"""

from __future__ import annotations

import json
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time


class BenchError(Exception):
    """A figure cannot be measured: the bench stops with this message."""


def log(msg: str) -> None:
    print("bench: %s" % msg, file=sys.stderr, flush=True)


def stats(samples: list[float]) -> dict:
    """The form every timed figure has in results.json: median, min, max and the samples."""
    if not samples:
        return {"n": 0, "median": None, "min": None, "max": None, "samples": []}
    return {"n": len(samples), "median": statistics.median(samples), "min": min(samples),
            "max": max(samples), "samples": samples}


class Run:
    """One finished process: wall time from spawn until it exited and closed stdout/stderr."""

    def __init__(self, seconds, rc, out, err, rusage):
        self.seconds = seconds
        self.rc = rc
        self.out = out
        self.err = err
        self.maxrss_kib = rusage.ru_maxrss
        self.cpu = rusage.ru_utime + rusage.ru_stime


def run_measured(argv, env, cwd=None, timeout=120.0) -> Run:
    """Spawn argv, read stdout and stderr to EOF and reap it with wait4 (for its peak RSS),
    as ansible's local connection does (communicate + wait)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=cwd)
    chunks = {p.stdout: [], p.stderr: []}
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    sel.register(p.stderr, selectors.EVENT_READ)
    open_pipes = 2
    deadline = t0 + timeout
    try:
        while open_pipes:
            left = deadline - time.perf_counter()
            if left <= 0:
                p.kill()
                raise BenchError("timed out after %ss: %s" % (timeout, " ".join(map(str, argv))[:300]))
            for key, _ in sel.select(min(left, 1.0)):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fileobj].append(data)
                else:
                    sel.unregister(key.fileobj)
                    open_pipes -= 1
        _, status, rusage = os.wait4(p.pid, 0)
        t1 = time.perf_counter()
        p.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:
        if p.returncode is None:
            p.kill()
            p.wait()
        raise
    finally:
        sel.close()
        p.stdout.close()
        p.stderr.close()
    return Run(t1 - t0, p.returncode, b"".join(chunks[p.stdout]).decode(errors="replace"),
               b"".join(chunks[p.stderr]).decode(errors="replace"), rusage)


def peak_rss_kib(argv, env, cwd=None):
    """Peak RSS of argv in KiB, as GNU time reports it (%M). wait4 on a child of this Python
    process would report this process's own size: a vfork child inherits the parent's peak."""
    with tempfile.NamedTemporaryFile("r", prefix="bench-rss-") as f:
        r = run_measured(["/usr/bin/time", "-f", "%M", "-o", f.name] + list(argv), env, cwd=cwd)
        lines = [l for l in f.read().split() if l.isdigit()]
    if not lines:
        raise BenchError("/usr/bin/time reported nothing for %s" % argv)
    return int(lines[-1]), r


def reply_json(out: str) -> dict:
    """The JSON a module replied: its whole stdout, or else its last line that is JSON."""
    text = out.strip()
    try:
        return json.loads(text)
    except ValueError:
        for line in reversed(text.splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise BenchError("no JSON reply in %r" % out[-500:])
