"""Stock against ours, side by side: what every figure of bench.py runs on.

The Rig holds a private work dir under the system temp dir (tiny modules to run as jobs, a finished
job file, ansible.cfg), the environment every process of the bench gets (`ASYNC_BENCH_RUN=<run
id>`, and `ASYNC_BENCH_TAG=<tag>` to tell one figure's processes from another's), and the sweep
that kills whatever still carries the marker, by process group. harvest.prepare() fills in how
ansible invokes each flavour's async_wrapper and async_status; `launch` starts one job that way.
Timed runs alternate which flavour goes first, and figures 1–2 stop their timed runs past
`--phase-cap`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from timing import BenchError, Run, log, peak_rss_kib, reply_json, run_measured, stats

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LIBRARY = REPO / "library"
MARK = "ASYNC_BENCH_RUN"
TAG = "ASYNC_BENCH_TAG"
STUB_MARK = "STUB installed by tests/stub_stock_modules.py"
FIXED_JID = "j123456789.4242"
FLAVOURS = ("stock", "ours")
# A finished job as the command module leaves it: what async_status reads in figure 2.
FINISHED_JOB = {
    "changed": True, "stdout": "hello", "stderr": "", "rc": 0, "cmd": ["echo", "hello"],
    "start": "2025-01-01 00:00:00.000000", "end": "2025-01-01 00:00:00.003000",
    "delta": "0:00:00.003000", "msg": "",
    "invocation": {"module_args": {"_raw_params": "echo hello", "_uses_shell": False,
                                   "expand_argument_vars": True, "stdin_add_newline": True,
                                   "strip_empty_ends": True, "cmd": None, "argv": None,
                                   "chdir": None, "executable": None, "creates": None,
                                   "removes": None, "stdin": None}},
}


def stock_module_source(name: str) -> Path:
    """ansible-core's own module: the .orig kept beside the stub, or the module if not stubbed."""
    spec = importlib.util.find_spec("ansible.modules")
    if spec is None or not spec.submodule_search_locations:
        raise BenchError("ansible is not installed for %s" % sys.executable)
    mods = Path(list(spec.submodule_search_locations)[0])
    orig = mods / (name + ".py.orig")
    if orig.exists():
        return orig
    module = mods / (name + ".py")
    if STUB_MARK in module.read_text(encoding="utf-8"):
        raise BenchError("%s is a stub and %s is missing" % (module, orig.name))
    return module


def by_flavour(samples: dict) -> dict:
    """{flavour: samples} as results.json has it: {flavour: stats}."""
    return {f: stats(samples[f]) for f in FLAVOURS}


class Rig:
    def __init__(self, args):
        self.args = args
        self.run_id = uuid.uuid4().hex
        self.work = Path(tempfile.mkdtemp(prefix="async-bench-"))
        self.venv_bin = Path(sys.executable).parent
        self.python = str(self.venv_bin / "python")
        self.results = {}
        self.notes = []
        base = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        base[MARK] = self.run_id
        base["LC_ALL"] = "C.UTF-8"
        self.base_env = base
        self.have_time = os.access("/usr/bin/time", os.X_OK)
        self.t0 = time.monotonic()
        # set by harvest.prepare()
        self.harvested = self.invocations = None
        self.wrapper_argv = self.status_argv = None
        self.status_module_text = self.status_args = None

    # ---------------------------------------------------------------- processes
    def env(self, tag=None, **extra) -> dict:
        env = dict(self.base_env)
        if tag:
            env[TAG] = tag
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def tagged(self, tag=None) -> list[int]:
        """PIDs of live processes started by this bench (optionally: with this tag)."""
        want = ("%s=%s" % (MARK, self.run_id)).encode()
        want_tag = ("%s=%s" % (TAG, tag)).encode() if tag else None
        me = os.getpid()
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            try:
                with open("/proc/%s/environ" % name, "rb") as f:
                    items = f.read().split(b"\0")
            except OSError:
                continue
            if want in items and (want_tag is None or want_tag in items):
                found.append(int(name))
        return found

    def sweep(self, tag=None, timeout=15.0) -> int:
        """Kill what is left of the bench's processes: their process groups, then each by id."""
        mine = os.getpgrp()
        deadline = time.monotonic() + timeout
        killed = set()
        while True:
            pids = self.tagged(tag)
            if not pids:
                return len(killed)
            for pid in pids:
                try:
                    group = os.getpgid(pid)
                    if group not in (mine, 0, 1):
                        os.killpg(group, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                log("could not stop processes %s" % pids)
                return len(killed)
            time.sleep(0.05)

    # ---------------------------------------------------------------- set-up
    def setup(self) -> None:
        w = self.work
        self.stocklib = w / "stocklib"
        self.stocklib.mkdir()
        for name in ("async_wrapper", "async_status"):
            shutil.copy2(stock_module_source(name), self.stocklib / (name + ".py"))
        (w / "mods").mkdir()
        self.tiny = w / "mods" / "tiny"
        self.tiny.write_text('#!/bin/sh\necho \'{"changed": false, "msg": "tiny"}\'\n')
        self.sleeper = w / "mods" / "sleep120"
        self.sleeper.write_text("#!/bin/sh\nexec sleep 120\n")
        self.sleeper60 = w / "mods" / "sleep60"
        # Ansible writes its version among every module's arguments; our wrapper times a job
        # by it as that version's own wrapper would (figure 4).
        import ansible.release
        self.sleeper60.write_text('#!/bin/sh\n# {"_ansible_version": "%s"}\nexec sleep 60\n'
                                  % ansible.release.__version__)
        for m in (self.tiny, self.sleeper, self.sleeper60):
            m.chmod(0o755)
        (w / "ansible.cfg").write_text("[defaults]\n")
        self.status_dir = w / "status-async"
        self.status_dir.mkdir(mode=0o700)
        job = self.status_dir / FIXED_JID
        job.write_text(json.dumps(FINISHED_JOB))
        job.chmod(0o600)

    def ansible_env(self, flavour, tag, **extra) -> dict:
        """Environment of an ansible-playbook run with this flavour's modules in its library."""
        lib = self.stocklib if flavour == "stock" else LIBRARY
        return self.env(tag=tag, ANSIBLE_LIBRARY=lib, ANSIBLE_CONFIG=self.work / "ansible.cfg",
                        ANSIBLE_LOCAL_TEMP=self.work / ("local-" + flavour),
                        ANSIBLE_HOME=self.work / "ansible-home", ANSIBLE_NOCOLOR=1,
                        ANSIBLE_RETRY_FILES_ENABLED=0, ANSIBLE_DEPRECATION_WARNINGS=0, **extra)

    def anon(self, text: str) -> str:
        """No machine paths in the results: the work dir and the repo become placeholders."""
        return text.replace(str(self.work), "<work>").replace(str(REPO) + "/", "").replace(str(REPO), ".")

    # ---------------------------------------------------------------- running stock vs ours
    def launch(self, flavour, limit, module, async_dir, tag=None, rss=False, **env) -> tuple[Run, dict]:
        """Start one job with this flavour's async_wrapper, as ansible does (`env`: the task's
        environment); its run and reply."""
        jid = "j%d" % random.randrange(10**11, 10**12)
        argv = self.wrapper_argv[flavour] + [jid, str(limit), str(module), "_"]
        env = self.env(tag=tag, ANSIBLE_ASYNC_DIR=async_dir, **env)
        r = self.call(argv, env, rss)
        reply = reply_json(r.out)
        if r.rc != 0 or reply.get("started") not in (True, 1) or reply.get("failed"):
            raise BenchError("%s async_wrapper did not start a job: rc=%s %s %s" % (flavour, r.rc, r.out, r.err))
        return r, reply

    def call(self, argv, env, rss=False) -> Run:
        """Run argv in the work dir; with rss, under GNU time and with its peak RSS."""
        if not rss:
            return run_measured(argv, env, cwd=str(self.work))
        kib, r = peak_rss_kib(argv, env, cwd=str(self.work))
        r.maxrss_kib = kib
        return r

    @staticmethod
    def order(i: int):
        """Which flavour goes first in round i: they take turns."""
        return FLAVOURS if i % 2 == 0 else tuple(reversed(FLAVOURS))

    def alternating(self, rounds, sample) -> dict:
        """{flavour: [sample(flavour, i) for each round i]}, the flavours taking turns first."""
        out = {f: [] for f in FLAVOURS}
        for i in range(rounds):
            for f in self.order(i):
                out[f].append(sample(f, i))
        return out

    def timed_calls(self, name, call) -> tuple[dict, dict]:
        """Wall and CPU ms of --runs calls per flavour, alternating; past --phase-cap seconds (and
        10 runs each) the loop stops: a busy machine must not stretch the bench past its budget."""
        n, cap = self.args.runs, self.args.phase_cap
        wall = {f: [] for f in FLAVOURS}
        cpu = {f: [] for f in FLAVOURS}
        t0 = time.monotonic()
        for i in range(n):
            if i >= 10 and time.monotonic() - t0 > cap:
                self.notes.append("%s: %d of %d timed runs per flavour, stopped at the %d s cap." % (name, i, n, cap))
                break
            for f in self.order(i):
                r = call(f)
                wall[f].append(r.seconds * 1000)
                cpu[f].append(r.cpu * 1000)
        return wall, cpu

    def elapsed(self) -> float:
        """Seconds since the bench started measuring."""
        return time.monotonic() - self.t0

    def close(self) -> None:
        n = self.sweep()
        if n:
            log("stopped %d leftover processes" % n)
        if self.args.keep:
            log("work dir kept: %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)
