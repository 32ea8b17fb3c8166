"""Benchmark: ansible-core 2.19's stock async_wrapper/async_status against this project's.

Run from the repo root with the 2.19 controller venv (tests/bench/run.sh does):

    .venv/core-2.19/bin/python tests/bench/bench.py --out target/bench

Everything happens on this machine, in a private work dir under the system temp dir. Both
implementations are invoked exactly the way ansible invokes them on a host: the stock ones as the
AnsiballZ payloads that ansible-playbook itself produced (harvested once per run with
ANSIBLE_KEEP_REMOTE_FILES=1), ours as the files in library/. Timed runs alternate stock and ours.

Every process the bench starts carries ASYNC_BENCH_RUN=<id> in its environment; whatever is left
of them (detached jobs) is killed by process group at the end, on error too.

Writes results.json (raw numbers) and results.md (the table) to --out and prints the table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print("bench: %s" % msg, file=sys.stderr, flush=True)


def stats(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0, "median": None, "min": None, "max": None, "samples": []}
    return {"n": len(samples), "median": statistics.median(samples), "min": min(samples),
            "max": max(samples), "samples": samples}


def json_args_line(module_text: str) -> str:
    """The arguments ansible wrote into our async_status (the line after the here-document's
    start)."""
    lines = module_text.splitlines()
    start = next(i for i, line in enumerate(lines) if "<<'ANSIBLE_ASYNC_STATUS_ARGS'" in line)
    return lines[start + 1]


def interpreter(path: Path) -> list[str]:
    """The argv prefix ansible uses for a file: its #! line split on blanks (none for a binary)."""
    with open(path, "rb") as f:
        head = f.readline(4096)
    if head.startswith(b"#!"):
        return head[2:].decode().split()
    return []


def reply_json(out: str) -> dict:
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


class Bench:
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
        self.sleep_exe = os.path.realpath(shutil.which("sleep") or "/bin/sleep")
        self.have_time = os.access("/usr/bin/time", os.X_OK)
        if args.breakdown and not os.access("/bin/bash", os.X_OK):
            args.breakdown = False
            self.notes.append("Figure 6: no controller/host split, /bin/bash is not installed.")

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
        self.sleeper60.write_text("#!/bin/sh\nexec sleep 60\n")
        for m in (self.tiny, self.sleeper, self.sleeper60):
            m.chmod(0o755)
        (w / "ansible.cfg").write_text("[defaults]\n")
        self.status_dir = w / "status-async"
        self.status_dir.mkdir(mode=0o700)
        job = self.status_dir / FIXED_JID
        job.write_text(json.dumps(FINISHED_JOB))
        job.chmod(0o600)
        self.sizes = {}

    def ansible_env(self, flavour, tag, **extra) -> dict:
        lib = self.stocklib if flavour == "stock" else LIBRARY
        return self.env(tag=tag, ANSIBLE_LIBRARY=lib, ANSIBLE_CONFIG=self.work / "ansible.cfg",
                        ANSIBLE_LOCAL_TEMP=self.work / ("local-" + flavour),
                        ANSIBLE_HOME=self.work / "ansible-home", ANSIBLE_NOCOLOR=1,
                        ANSIBLE_RETRY_FILES_ENABLED=0, ANSIBLE_DEPRECATION_WARNINGS=0, **extra)

    def harvest(self, flavour) -> dict:
        """Run harvest.yml with -vvv and kept remote files: what ansible copies, and how it runs it."""
        h = self.work / ("harvest-" + flavour)
        h.mkdir()
        inv = h / "inventory"
        inv.write_text("host ansible_connection=local ansible_python_interpreter=%s ansible_async_dir=%s\n"
                       % (self.python, self.status_dir))
        env = self.ansible_env(flavour, "harvest", ANSIBLE_KEEP_REMOTE_FILES=1,
                               ANSIBLE_REMOTE_TEMP=h / "remote")
        r = run_measured([str(self.venv_bin / "ansible-playbook"), "-vvv", "-i", str(inv),
                          "-e", "fixed_jid=" + FIXED_JID, str(HERE / "playbooks" / "harvest.yml")],
                         env, cwd=str(h), timeout=300)
        (h / "output.txt").write_text(r.out + r.err)
        if r.rc != 0 or "failed=0" not in r.out:
            raise BenchError("harvest playbook (%s) failed:\n%s" % (flavour, (r.out + r.err)[-3000:]))
        task, puts, execs = None, {}, {}
        for line in r.out.splitlines():
            m = re.match(r"TASK \[(.*?)\]", line)
            if m:
                task = m.group(1)
                continue
            m = re.match(r"<[^>]*> PUT (\S+) TO (\S+)\s*$", line)
            if m:
                puts.setdefault(task, []).append(m.group(2))
                continue
            m = re.match(r"<[^>]*> EXEC (.*)$", line)
            if m:
                execs.setdefault(task, []).append(m.group(1))
        self.sweep("harvest")
        start = puts.get("bench start", [])
        wrapper = [p for p in start if Path(p).name.startswith("async_wrapper")]
        fixed = puts.get("bench fixed status", [])
        status_calls = len([p for p in puts.get("bench status", []) if "async_status" in Path(p).name])
        if len(wrapper) != 1 or status_calls != 5:
            raise BenchError("harvest (%s): unexpected PUTs %r" % (flavour, puts))
        if (flavour == "ours") == wrapper[0].endswith(".py"):
            raise BenchError("harvest (%s): ansible shipped %s: the wrong async_wrapper" % (flavour, wrapper[0]))
        info = {
            "puts": {t: [[Path(p).name, os.path.getsize(p)] for p in ps] for t, ps in puts.items()},
            "exec": {t: [self.anon(c) for c in cs] for t, cs in execs.items()},
            "wrapper_payload": wrapper[0],
            "wrapper_bytes": os.path.getsize(wrapper[0]),
            "module_payload_bytes": sum(os.path.getsize(p) for p in start if p != wrapper[0]),
            "status_bytes_per_call": sum(os.path.getsize(p) for p in puts["bench status"]) / 5,
            "cleanup_bytes": sum(os.path.getsize(p) for p in puts.get("bench cleanup", [])),
            "fixed_status_files": {Path(p).name: p for p in fixed},
        }
        info["lifecycle_bytes"] = (info["wrapper_bytes"] + 5 * info["status_bytes_per_call"]
                                   + info["cleanup_bytes"])
        return info

    def prepare_invocations(self) -> None:
        self.harvested = {f: self.harvest(f) for f in FLAVOURS}
        hs, ho = self.harvested["stock"], self.harvested["ours"]
        stock_wrapper = Path(hs["wrapper_payload"])
        stock_status = [Path(p) for n, p in hs["fixed_status_files"].items() if n.startswith("AnsiballZ_async_status")]
        if len(stock_status) != 1:
            raise BenchError("no stock async_status payload harvested: %r" % hs["fixed_status_files"])
        # Ours is a JSON-args module: ansible wrote the arguments into the text it shipped.
        our_module = [Path(p) for n, p in ho["fixed_status_files"].items() if n.startswith("AnsiballZ_async_status")]
        if len(our_module) != 1:
            raise BenchError("no async_status module harvested for ours: %r" % ho["fixed_status_files"])
        self.status_module_text = our_module[0].read_text()
        self.status_args = self.work / "status-args.json"
        self.status_args.write_text(json_args_line(self.status_module_text))
        ours_wrapper = LIBRARY / "async_wrapper"
        ours_status = self.work / "AnsiballZ_async_status"
        ours_status.write_text(self.status_module_text)
        self.wrapper_argv = {
            "stock": interpreter(stock_wrapper) + [str(stock_wrapper)],
            "ours": interpreter(ours_wrapper) + [str(ours_wrapper)],
        }
        self.status_argv = {
            "stock": interpreter(stock_status[0]) + [str(stock_status[0])],
            "ours": interpreter(ours_status) + [str(ours_status)],
        }
        self.invocations = {
            "async_wrapper": {f: self.anon(" ".join(a)) + " JID LIMIT MODULE _" for f, a in self.wrapper_argv.items()},
            "async_status": {f: self.anon(" ".join(a)) for f, a in self.status_argv.items()},
        }

    def anon(self, text: str) -> str:
        """No machine paths in the results: the work dir and the repo become placeholders."""
        return text.replace(str(self.work), "<work>").replace(str(REPO) + "/", "").replace(str(REPO), ".")

    # ---------------------------------------------------------------- primitives
    def launch(self, flavour, limit, module, async_dir, tag=None, rss=False) -> tuple[Run, dict]:
        jid = "j%d" % random.randrange(10**11, 10**12)
        argv = self.wrapper_argv[flavour] + [jid, str(limit), str(module), "_"]
        env = self.env(tag=tag, ANSIBLE_ASYNC_DIR=async_dir)
        if rss:
            kib, r = peak_rss_kib(argv, env, cwd=str(self.work))
            r.maxrss_kib = kib
        else:
            r = run_measured(argv, env, cwd=str(self.work))
        reply = reply_json(r.out)
        if r.rc != 0 or reply.get("started") not in (True, 1) or reply.get("failed"):
            raise BenchError("%s async_wrapper did not start a job: rc=%s %s %s" % (flavour, r.rc, r.out, r.err))
        return r, reply

    def status_call(self, flavour, argv=None, rss=False) -> Run:
        argv = argv or self.status_argv[flavour]
        if rss:
            kib, r = peak_rss_kib(argv, self.env(tag="status"), cwd=str(self.work))
            r.maxrss_kib = kib
        else:
            r = run_measured(argv, self.env(tag="status"), cwd=str(self.work))
        reply = reply_json(r.out)
        if r.rc != 0 or reply.get("finished") not in (True, 1) or reply.get("stdout") != "hello":
            raise BenchError("%s async_status gave rc=%s %s %s" % (flavour, r.rc, r.out, r.err))
        return r

    def capped(self, name, t0, i, n) -> bool:
        """Past --phase-cap seconds (and 10 runs each), a timing loop stops: a busy machine must
        not stretch the bench past its time budget."""
        if i >= 10 and time.monotonic() - t0 > self.args.phase_cap:
            self.notes.append("%s: %d of %d timed runs per flavour, stopped at the %d s cap."
                              % (name, i, n, self.args.phase_cap))
            return True
        return False

    @staticmethod
    def order(i: int):
        return FLAVOURS if i % 2 == 0 else tuple(reversed(FLAVOURS))

    # ---------------------------------------------------------------- figures
    def fig_launch(self) -> None:
        n, ncold, nrss = self.args.runs, self.args.cold_runs, self.args.rss_runs
        warm_dir = self.work / "launch-async"
        lat = {f: [] for f in FLAVOURS}
        cpu = {f: [] for f in FLAVOURS}
        for f in FLAVOURS:  # warm-up: ours installs its program cache, both warm the page cache
            self.launch(f, 30, self.tiny, warm_dir, tag="launch")
        t0 = time.monotonic()
        for i in range(n):
            if self.capped("Figure 1", t0, i, n):
                break
            for f in self.order(i):
                r, _ = self.launch(f, 30, self.tiny, warm_dir, tag="launch")
                lat[f].append(r.seconds * 1000)
                cpu[f].append(r.cpu * 1000)
        cold = {f: [] for f in FLAVOURS}
        for i in range(ncold):
            for f in self.order(i):
                r, _ = self.launch(f, 30, self.tiny, self.work / ("cold-%s-%d" % (f, i)), tag="launch")
                cold[f].append(r.seconds * 1000)
        rss = {f: [] for f in FLAVOURS}
        if self.have_time:
            for i in range(nrss):
                for f in self.order(i):
                    r, _ = self.launch(f, 30, self.tiny, warm_dir, tag="launch", rss=True)
                    rss[f].append(r.maxrss_kib / 1024)
            floor, _ = peak_rss_kib(["/bin/true"], self.env())
            self.results["rss_floor_mib"] = floor / 1024
        else:
            self.notes.append("peak RSS not measured: /usr/bin/time is not installed")
        base = [run_measured(["/bin/true"], self.env()).seconds * 1000 for _ in range(10)]
        self.results["launch"] = {f: stats(lat[f]) for f in FLAVOURS}
        self.results["launch_cpu"] = {f: stats(cpu[f]) for f in FLAVOURS}
        self.results["launch_cold"] = {f: stats(cold[f]) for f in FLAVOURS}
        if self.have_time:
            self.results["launch_rss"] = {f: stats(rss[f]) for f in FLAVOURS}
        self.results["harness_spawn_ms"] = stats(base)
        self.sweep("launch")

    def fig_status(self) -> None:
        n, nrss = self.args.runs, self.args.rss_runs
        # The same finished job in an async dir that our async_wrapper never used (a job of the
        # stock wrapper, or a wiped cache): ours must answer without what its wrapper left there.
        bare = self.work / "status-bare"
        bare.mkdir(mode=0o700)
        shutil.copy2(self.status_dir / FIXED_JID, bare / FIXED_JID)
        bare_module = self.work / "AnsiballZ_async_status-bare"
        args = json.loads(self.status_args.read_text())
        args["_async_dir"] = str(bare)
        bare_module.write_text(self.status_module_text.replace(self.status_args.read_text(), json.dumps(args)))
        ours_bare = self.status_argv["ours"][:-1] + [str(bare_module)]
        lat = {f: [] for f in FLAVOURS}
        cpu = {f: [] for f in FLAVOURS}
        fallback = {f: [] for f in FLAVOURS}
        for f in FLAVOURS:
            self.status_call(f)
        self.status_call("ours", ours_bare)
        t0 = time.monotonic()
        for i in range(n):
            if self.capped("Figure 2", t0, i, n):
                break
            for f in self.order(i):
                r = self.status_call(f)
                lat[f].append(r.seconds * 1000)
                cpu[f].append(r.cpu * 1000)
        for i in range(max(1, n // 3)):
            for f in self.order(i):
                r = self.status_call(f, ours_bare if f == "ours" else None)
                fallback[f].append(r.seconds * 1000)
        rss = {f: [] for f in FLAVOURS}
        if self.have_time:
            for i in range(nrss):
                for f in self.order(i):
                    rss[f].append(self.status_call(f, rss=True).maxrss_kib / 1024)
            self.results["status_rss"] = {f: stats(rss[f]) for f in FLAVOURS}
        self.results["status"] = {f: stats(lat[f]) for f in FLAVOURS}
        self.results["status_cpu"] = {f: stats(cpu[f]) for f in FLAVOURS}
        self.results["status_bare"] = {f: stats(fallback[f]) for f in FLAVOURS}

    def job_processes(self, tag):
        """(machinery pids, module pids) of the jobs with this tag."""
        machinery, modules = [], []
        for pid in self.tagged(tag):
            try:
                exe = os.readlink("/proc/%d/exe" % pid)
            except OSError:
                continue
            (modules if exe == self.sleep_exe else machinery).append(pid)
        return machinery, modules

    @staticmethod
    def smaps(pid) -> dict:
        out = {}
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                        out[parts[0][:-1].lower()] = int(parts[1])
        except OSError:
            pass
        return out

    def fig_memory(self) -> None:
        njobs = self.args.jobs
        per = {}
        for f in FLAVOURS:
            tag = "mem-" + f
            async_dir = self.work / ("mem-" + f)
            t0 = time.monotonic()
            try:
                ex = ThreadPoolExecutor(max_workers=8)
                try:
                    list(ex.map(lambda _: self.launch(f, 600, self.sleeper, async_dir, tag=tag), range(njobs)))
                finally:  # on an error or a signal: drop the queued launches, finish the running ones
                    ex.shutdown(wait=True, cancel_futures=True)
                started = time.monotonic() - t0
                # steady state: every module running, the machinery's process count unchanged
                deadline = time.monotonic() + 90
                last = None
                while True:
                    machinery, modules = self.job_processes(tag)
                    now = (len(machinery), len(modules))
                    if len(modules) == njobs and now == last:
                        break
                    if time.monotonic() > deadline:
                        raise BenchError("%s: %d of %d jobs running after 90 s (%d other processes)"
                                         % (f, len(modules), njobs, len(machinery)))
                    last = now
                    time.sleep(1.0)
                sm = [self.smaps(p) for p in machinery]
                mods = [self.smaps(p) for p in modules]
                per[f] = {
                    "jobs": njobs,
                    "start_all_seconds": started,
                    "machinery_processes": len(machinery),
                    "processes_per_job": len(machinery) / njobs,
                    "pss_mib_per_job": sum(s.get("pss", 0) for s in sm) / 1024 / njobs,
                    "rss_mib_per_job": sum(s.get("rss", 0) for s in sm) / 1024 / njobs,
                    "module_pss_mib_per_job": sum(s.get("pss", 0) for s in mods) / 1024 / njobs,
                    "machinery_pss_kib": sorted(s.get("pss", 0) for s in sm),
                }
                log("memory %s: %d jobs, %d machinery processes, %.2f MiB PSS per job"
                    % (f, njobs, len(machinery), per[f]["pss_mib_per_job"]))
            finally:
                self.sweep(tag)
        self.results["memory"] = per

    def fig_timeout(self) -> None:
        reps, limits = self.args.timeout_reps, (7, 2)
        jobs, lock = [], threading.Lock()
        done = threading.Event()

        def poller():
            while not done.is_set():
                with lock:
                    pending = [j for j in jobs if "late" not in j and "error" not in j]
                for j in pending:
                    try:
                        with open(j["file"]) as fh:
                            text = fh.read()
                    except OSError:
                        continue
                    now = time.perf_counter()
                    if "Timeout exceeded" in text:
                        j["late"] = now - j["t0"] - j["limit"]
                    elif text and '"started"' not in text:
                        j["error"] = text[:300]
                time.sleep(0.005)

        thread = threading.Thread(target=poller, daemon=True)
        thread.start()
        try:
            for rep in range(reps):
                for k, limit in enumerate(limits):
                    for f in self.order(rep + k):
                        t0 = time.perf_counter()
                        _, reply = self.launch(f, limit, self.sleeper60, self.work / "timeout-async", tag="timeout")
                        with lock:
                            jobs.append({"flavour": f, "limit": limit, "t0": t0, "file": reply["results_file"]})
            deadline = time.monotonic() + max(limits) + 25
            while time.monotonic() < deadline:
                with lock:
                    if all("late" in j or "error" in j for j in jobs):
                        break
                time.sleep(0.1)
        finally:
            done.set()
            thread.join()
            self.sweep("timeout")
        bad = [j for j in jobs if "late" not in j]
        if bad:
            raise BenchError("jobs not ended by their time limit: %r" % bad)
        self.results["timeout"] = {
            str(limit): {f: stats([j["late"] for j in jobs if j["flavour"] == f and j["limit"] == limit])
                         for f in FLAVOURS}
            for limit in limits
        }

    def fig_bytes(self) -> None:
        out = {}
        for f in FLAVOURS:
            h = self.harvested[f]
            out[f] = {k: h[k] for k in ("wrapper_bytes", "status_bytes_per_call", "cleanup_bytes",
                                        "lifecycle_bytes", "module_payload_bytes", "puts", "exec")}
        out["library_files"] = {p.name: p.stat().st_size for p in sorted(LIBRARY.iterdir()) if p.is_file()}
        self.results["bytes"] = out

    def timesh(self) -> Path:
        """ANSIBLE_EXECUTABLE for figure 6: ansible runs every host-side command as
        `<executable> -c CMD`; this bash script runs it with /bin/sh and leaves one record per
        command: wall clock, its own CPU and the command's (bash `times`, 1 ms resolution), and
        the start of the command line. Only builtins run after the command."""
        path = self.work / "timesh"
        if not path.exists():
            path.write_text(
                "#!/bin/bash\n"
                "# ansible nests `<executable> -c \"<executable> -c '...'\"`: time the outer one only\n"
                'if [ -n "${ASYNC_BENCH_TIMED:-}" ]; then exec /bin/sh "$@"; fi\n'
                "export ASYNC_BENCH_TIMED=1\n"
                "start=$EPOCHREALTIME\n"
                '/bin/sh "$@"\n'
                "rc=$?\n"
                'end=$EPOCHREALTIME\n'
                "cmd=${2:0:400}\n"
                "cmd=${cmd//$'\\n'/ }\n"
                '{ echo "@ $start $end"; times; echo "$cmd"; } >"$ASYNC_BENCH_TIMES/$$.$RANDOM"\n'
                "exit $rc\n")
            path.chmod(0o755)
        return path

    @staticmethod
    def command_kind(cmd: str) -> str:
        if "umask 77 && mkdir" in cmd or "chmod u+" in cmd or "rm -f -r" in cmd:
            return "tmp dir housekeeping"
        if "async_wrapper" in cmd:
            return "async_wrapper"
        if "async_status" in cmd:
            return "async_status"
        return "other"

    def read_times(self, d: Path) -> dict:
        clock = re.compile(r"(\d+)m([\d.]+)s")
        n = 0
        wall = shell = host = 0.0
        kinds = {}
        for f in d.iterdir():
            lines = f.read_text().splitlines()
            if len(lines) < 3 or not lines[0].startswith("@ "):
                continue
            _, t0, t1 = lines[0].split()
            own = [int(m) * 60 + float(x) for m, x in clock.findall(lines[1])]
            kids = [int(m) * 60 + float(x) for m, x in clock.findall(lines[2])]
            n += 1
            wall += float(t1) - float(t0)
            shell += sum(own)
            host += sum(kids)
            k = kinds.setdefault(self.command_kind(lines[3] if len(lines) > 3 else ""),
                                 {"commands": 0, "cpu": 0.0, "wall_sum": 0.0})
            k["commands"] += 1
            k["cpu"] += sum(kids)
            k["wall_sum"] += float(t1) - float(t0)
        return {"host_commands": n, "host_wall_sum": wall, "host_cpu": host, "timing_shell_cpu": shell,
                "host_by_kind": kinds,
                "async_modules_cpu": sum(v["cpu"] for k, v in kinds.items() if k.startswith("async_")),
                "async_modules_wall_sum": sum(v["wall_sum"] for k, v in kinds.items() if k.startswith("async_"))}

    def fleet_run(self, flavour, i) -> dict:
        d = self.work / ("fleet-%s-%d" % (flavour, i))
        (d / "times").mkdir(parents=True)
        inv = d / "inventory"
        async_dir = self.work / ("fleet-async-" + flavour)
        inv.write_text("".join(
            "h%02d ansible_connection=local ansible_python_interpreter=%s ansible_async_dir=%s\n"
            % (n, self.python, async_dir) for n in range(1, self.args.hosts + 1)))
        extra = {"ANSIBLE_REMOTE_TEMP": d / "remote"}
        if self.args.breakdown:
            extra.update(ANSIBLE_EXECUTABLE=self.timesh(), ASYNC_BENCH_TIMES=d / "times")
        env = self.ansible_env(flavour, "fleet", **extra)
        r = run_measured([str(self.venv_bin / "ansible-playbook"), "-i", str(inv),
                          str(HERE / "playbooks" / "fleet.yml")], env, cwd=str(d), timeout=900)
        (d / "output.txt").write_text(r.out + r.err)
        self.sweep("fleet")
        recap = re.findall(r"^h\d+\s+:.*$", r.out, re.M)
        if r.rc != 0 or len(recap) != self.args.hosts or not all("failed=0" in x for x in recap):
            raise BenchError("fleet playbook (%s) failed:\n%s" % (flavour, (r.out + r.err)[-3000:]))
        res = {"wall": r.seconds, "cpu": r.cpu, "status_retries": r.out.count("FAILED - RETRYING")}
        if self.args.breakdown:
            t = self.read_times(d / "times")
            res.update(t)
            # the rest of the process tree's CPU is ansible-playbook's own (the controller)
            res["controller_cpu"] = r.cpu - t["host_cpu"] - t["timing_shell_cpu"]
        return res

    def fig_fleet(self) -> None:
        runs = []
        started = time.monotonic()
        for i in range(self.args.fleet_runs):
            t = time.monotonic()
            if i > 0 and self.elapsed() + (t - started) / i > self.args.budget:
                self.notes.append("Figure 6 ran %d of %d playbook runs per flavour: the next would have "
                                  "passed the %d s time budget." % (i, self.args.fleet_runs, self.args.budget))
                break
            for f in self.order(i):
                res = self.fleet_run(f, i)
                res["flavour"] = f
                runs.append(res)
                log("playbook %s run %d: %.1f s wall, %.1f s CPU%s" % (
                    f, i + 1, res["wall"], res["cpu"],
                    ", %d host commands, host CPU %.1f s, controller CPU %.1f s"
                    % (res["host_commands"], res["host_cpu"], res["controller_cpu"])
                    if "host_cpu" in res else ""))
        out = {"runs": runs}
        for key in ("wall", "cpu", "controller_cpu", "host_cpu", "host_wall_sum", "host_commands",
                    "timing_shell_cpu", "status_retries", "async_modules_cpu", "async_modules_wall_sum"):
            if all(key in r for r in runs):
                out[key] = {f: stats([r[key] for r in runs if r["flavour"] == f]) for f in FLAVOURS}
        if self.args.breakdown:
            # what the timing shell adds per command, on top of a plain `/bin/sh -c`
            plain = [run_measured(["/bin/sh", "-c", "/bin/sh -c true"], self.env()).cpu for _ in range(20)]
            probe_dir = self.work / "probe-times"
            probe_dir.mkdir()
            env = self.env(ASYNC_BENCH_TIMES=probe_dir)
            timed = [run_measured([str(self.timesh()), "-c", "%s -c true" % self.timesh()], env).cpu
                     for _ in range(20)]
            out["timing_overhead_cpu_ms_per_command"] = (statistics.median(timed) - statistics.median(plain)) * 1000
        self.results["fleet"] = out

    # ---------------------------------------------------------------- main
    def meta(self) -> dict:
        import ansible.release
        return {
            "ansible_core": ansible.release.__version__,
            "controller_python": platform.python_version(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "loadavg_start": self.load_start,
            "loadavg_end": open("/proc/loadavg").read().split()[:3],
            "params": {k: v for k, v in vars(self.args).items() if k != "out"},
            "invocations": self.invocations,
        }

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def run(self) -> dict:
        self.load_start = open("/proc/loadavg").read().split()[:3]
        if float(self.load_start[0]) > (os.cpu_count() or 1):
            log("the machine is busy (load average %s on %d CPUs): timings will be inflated and noisy"
                % (" ".join(self.load_start), os.cpu_count()))
        t0 = self.t0 = time.monotonic()
        phases = [
            ("harvest (what ansible ships and runs, both flavours)", self.prepare_invocations),
            ("figure 1: wrapper launch", self.fig_launch),
            ("figure 2: async_status call", self.fig_status),
            ("figure 3: memory per running job", self.fig_memory),
            ("figure 4: lateness after the time limit", self.fig_timeout),
            ("figure 5: bytes copied", self.fig_bytes),
            ("figure 6: ansible-playbook, %d hosts" % self.args.hosts, self.fig_fleet),
        ]
        only = set(self.args.only.split(",")) if self.args.only else None
        timings = {}
        for k, (name, fn) in enumerate(phases):
            if only is not None and k != 0 and str(k) not in only:
                continue
            log(name)
            t = time.monotonic()
            fn()
            timings[name] = round(time.monotonic() - t, 1)
            log("  done in %.1f s" % timings[name])
        self.results["phase_seconds"] = timings
        self.results["total_seconds"] = round(time.monotonic() - t0, 1)
        self.results["meta"] = self.meta()
        self.results["notes"] = self.notes
        return self.results

    def close(self) -> None:
        n = self.sweep()
        if n:
            log("stopped %d leftover processes" % n)
        if self.args.keep:
            log("work dir kept: %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


# -------------------------------------------------------------------- table
def fmt(v) -> str:
    if v is None:
        return "–"
    if float(v).is_integer():
        return "%d" % v
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    if a >= 0.01:
        return "%.3f" % v
    return "%.4f" % v


def cell(s) -> str:
    if isinstance(s, dict):
        if s.get("n", 0) > 1:
            return "%s (%s–%s)" % (fmt(s["median"]), fmt(s["min"]), fmt(s["max"]))
        return fmt(s["median"])
    return fmt(s)


def value(s):
    return s["median"] if isinstance(s, dict) else s


def ratio(stock, ours) -> str:
    a, b = value(stock), value(ours)
    if a is None or b is None:
        return "–"
    if b <= 0:
        return "∞"
    r = a / b
    return ("%.0f×" % r) if r >= 10 else ("%.1f×" % r) if r >= 1 else ("%.2f×" % r)


def rows(res) -> list[list]:
    """[label, unit, stock, ours, target] for every figure measured."""
    out = []

    def add(label, unit, stock, ours, target=""):
        out.append([label, unit, stock, ours, target])

    if "launch" in res:
        add("1 wrapper launch (invocation → reply + exit)", "ms", res["launch"]["stock"], res["launch"]["ours"], "≥ 50×")
        add("1 wrapper launch, CPU time (user + sys)", "ms", res["launch_cpu"]["stock"], res["launch_cpu"]["ours"])
        add("1 wrapper launch, first on the host (empty cache)", "ms", res["launch_cold"]["stock"], res["launch_cold"]["ours"])
        if "launch_rss" in res:
            add("1 wrapper launch peak RSS", "MiB", res["launch_rss"]["stock"], res["launch_rss"]["ours"])
    if "status" in res:
        add("2 one async_status call", "ms", res["status"]["stock"], res["status"]["ours"], "≥ 20×")
        add("2 async_status call, CPU time (user + sys)", "ms", res["status_cpu"]["stock"], res["status_cpu"]["ours"])
        add("2 async_status call, job dir our wrapper never used", "ms", res["status_bare"]["stock"], res["status_bare"]["ours"])
        if "status_rss" in res:
            add("2 async_status peak RSS", "MiB", res["status_rss"]["stock"], res["status_rss"]["ours"])
    if "memory" in res:
        m = res["memory"]
        n = m["stock"]["jobs"]
        add("3 PSS per running job (%d jobs)" % n, "MiB", m["stock"]["pss_mib_per_job"], m["ours"]["pss_mib_per_job"], "≥ 10×")
        add("3 processes per running job (besides the module)", "", m["stock"]["processes_per_job"], m["ours"]["processes_per_job"], "ours 1")
        add("3 time to start the %d jobs (8 launches at a time)" % n, "s", m["stock"]["start_all_seconds"], m["ours"]["start_all_seconds"])
    if "timeout" in res:
        for limit in ("7", "2"):
            t = res["timeout"][limit]
            add("4 ended after the limit, async: %s" % limit, "s late", t["stock"], t["ours"], "ours ≤ 0.1 s")
    if "bytes" in res:
        b = res["bytes"]
        add("5 async_wrapper file copied", "KB", b["stock"]["wrapper_bytes"] / 1000, b["ours"]["wrapper_bytes"] / 1000)
        add("5 copied per async_status call", "KB", b["stock"]["status_bytes_per_call"] / 1000, b["ours"]["status_bytes_per_call"] / 1000)
        add("5 copied per task lifecycle (wrapper + 5 status + cleanup)", "KB", b["stock"]["lifecycle_bytes"] / 1000,
            b["ours"]["lifecycle_bytes"] / 1000, "≥ 1×")
    if "fleet" in res:
        fl = res["fleet"]
        add("6 ansible-playbook wall time", "s", fl["wall"]["stock"], fl["wall"]["ours"], "> 1×")
        add("6 ansible-playbook CPU (whole process tree)", "s", fl["cpu"]["stock"], fl["cpu"]["ours"])
        if "controller_cpu" in fl:
            add("6 … controller CPU (ansible-playbook itself)", "s", fl["controller_cpu"]["stock"], fl["controller_cpu"]["ours"])
            add("6 … host-side CPU (commands ansible ran on the hosts)", "s", fl["host_cpu"]["stock"], fl["host_cpu"]["ours"])
            add("6 … … of which async_wrapper + async_status calls", "s", fl["async_modules_cpu"]["stock"], fl["async_modules_cpu"]["ours"])
    return out


def met(target: str, stock, ours) -> str:
    a, b = value(stock), value(ours)
    if not target or a is None or b is None:
        return ""
    m = re.match(r"[≥>] (\d+(?:\.\d+)?)×", target)
    if m:
        need = float(m.group(1))
        ok = (a / b >= need) if target.startswith("≥") else (a / b > need)
        return target + (" ✓" if ok else " ✗")
    m = re.match(r"ours ≤ (\d+(?:\.\d+)?) s", target)
    if m:
        worst = ours["max"] if isinstance(ours, dict) else b
        return target + (" ✓" if worst <= float(m.group(1)) else " ✗")
    if target == "ours 1":
        return target + (" ✓" if b == 1 else " ✗")
    return target


def table(res) -> tuple[str, str]:
    head = ["figure", "unit", "stock median (min–max)", "ours median (min–max)", "stock/ours", "target"]
    body = [[l, u, cell(s), cell(o), ratio(s, o), met(t, s, o)] for l, u, s, o, t in rows(res)]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    text = "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in [head] + body)
    md = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---", "---:", "---:", "---:", "---"]) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in body]
    return text, "\n".join(md)


def markdown(res, md_table) -> str:
    meta = res["meta"]
    lines = [
        "Stock ansible-core %s modules vs this project's, measured on %d CPUs (Linux %s), %s UTC, "
        "load average %s at start; whole bench %.0f s." % (
            meta["ansible_core"], meta["cpus"], meta["kernel"], meta["date_utc"],
            " ".join(meta["loadavg_start"]), res["total_seconds"]),
        "",
        md_table,
        "",
    ]
    if "harness_spawn_ms" in res:
        lines.append("Spawning `/bin/true` the same way costs %s ms (included in figures 1 and 2). CPU time is "
                     "that of the invoked process and the children it waited for (a job's detached processes "
                     "are not counted, for either); unlike wall time it hardly depends on the machine's load."
                     % fmt(res["harness_spawn_ms"]["median"]))
    if "rss_floor_mib" in res:
        lines.append("Peak RSS is GNU time's %%M; it reports %s MiB for `/bin/true`." % fmt(res["rss_floor_mib"]))
    if "bytes" in res:
        lines.append("Figure 5 counts the files ansible PUT on the host (ansible-playbook -vvv, kept with "
                     "ANSIBLE_KEEP_REMOTE_FILES=1); the module's own payload (%s KB, the same for both) is "
                     "not counted." % fmt(res["bytes"]["stock"]["module_payload_bytes"] / 1000))
    fl = res.get("fleet")
    if fl:
        text = ("Figure 6: %d hosts (local connection, ansible's default 5 forks), each starting 5 async "
                "`sleep 1` jobs, collecting them with async_status (`until`, `delay: 1`), one `poll: 1` "
                "task, cleanup." % meta["params"]["hosts"])
        if "host_commands" in fl:
            text += (" Every host-side command ran under a timing shell (about %s ms CPU each, in the wall "
                     "times, left out of both CPU shares): %s (stock) / %s (ours) commands per run, "
                     "their wall times adding up to %s s / %s s."
                     % (fmt(fl["timing_overhead_cpu_ms_per_command"]), fmt(fl["host_commands"]["stock"]["median"]),
                        fmt(fl["host_commands"]["ours"]["median"]), fmt(fl["host_wall_sum"]["stock"]["median"]),
                        fmt(fl["host_wall_sum"]["ours"]["median"])))
            by = {f: next(r for r in fl["runs"] if r["flavour"] == f)["host_by_kind"] for f in FLAVOURS}
            text += (" Host-side commands of the first run by kind (count, CPU s, summed wall s): "
                     + "; ".join("%s: %s" % (f, ", ".join("%s %d / %s / %s" % (k, v["commands"], fmt(v["cpu"]), fmt(v["wall_sum"]))
                                                         for k, v in sorted(by[f].items()))) for f in FLAVOURS) + ".")
        text += (" async_status retries of the `until` loop per run: %s (stock) / %s (ours); CPU of the "
                 "detached jobs themselves is in neither share."
                 % (fmt(fl["status_retries"]["stock"]["median"]), fmt(fl["status_retries"]["ours"]["median"])))
        lines.append(text)
    for n in res.get("notes", []):
        lines.append(n)
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="target/bench", help="where results.json and results.md go")
    p.add_argument("--runs", type=int, default=30, help="timed runs per flavour, figures 1 and 2")
    p.add_argument("--phase-cap", type=int, default=40,
                   help="seconds: figures 1 and 2 stop their timed runs (after 10 each) past this")
    p.add_argument("--cold-runs", type=int, default=5, help="launches with an empty async dir, figure 1")
    p.add_argument("--rss-runs", type=int, default=5, help="runs under /usr/bin/time for peak RSS, figures 1 and 2")
    p.add_argument("--jobs", type=int, default=100, help="jobs running at once, figure 3")
    p.add_argument("--timeout-reps", type=int, default=3, help="jobs per flavour and limit, figure 4")
    p.add_argument("--fleet-runs", type=int, default=3, help="playbook runs per flavour, figure 6")
    p.add_argument("--hosts", type=int, default=10, help="inventory size, figure 6")
    p.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                   help="figure 6 without the timing shell that splits controller and host CPU")
    p.add_argument("--budget", type=int, default=480,
                   help="seconds: figure 6 stops adding playbook runs (after the first pair) past this")
    p.add_argument("--only", default="", help="comma-separated figure numbers to run (default: all)")
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    args = p.parse_args()

    stop_signals = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def stop(signum, _frame):
        for sig in stop_signals:  # once: a second signal must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        log("interrupted by signal %d: stopping what the bench started" % signum)
        sys.exit(128 + signum)

    for sig in stop_signals:
        signal.signal(sig, stop)

    for f in ("async_wrapper", "async_status"):
        if not (LIBRARY / f).is_file():
            print("bench: library/%s is missing: run `make build` first" % f, file=sys.stderr)
            return 2
    bench = Bench(args)
    try:
        bench.setup()
        res = bench.run()
    except BenchError as e:
        print("bench: FAILED: %s" % e, file=sys.stderr)
        return 1
    finally:
        bench.close()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text, md = table(res)
    (out / "results.json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    (out / "results.md").write_text(markdown(res, md))
    print()
    print(text)
    print()
    print("bench: %.0f s; wrote %s and %s" % (res["total_seconds"], out / "results.json", out / "results.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
