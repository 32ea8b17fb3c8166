"""make bench, SSH part: stock ansible-core modules against ours over real OpenSSH.

The tests' private sshd (tests/harness/sshd.py), listening on 127.0.0.1 and on one more loopback address per
host (127.0.0.11 ...), ControlPersist on, forks = hosts. Round trip 0 (loopback) or ~RTT ms
through relay.py as ssh's ProxyCommand (it holds every chunk RTT/2 in each direction).
Stock and ours alternate in every round; figures are medians over the rounds.

1. The play of issue 9 (ssh/play.yml) on 5 hosts: wall time of ansible-playbook, pipelining
   off and on, at both round trips. Each run starts without connection masters.
2. One async_status poll with pipelining on, two ways:
   - as ansible-playbook sees it: the time between the items of a loop of POLLS
     async_status calls on a running job (ssh/poll.yml, item times from ssh/item_times.py);
   - the SSH command alone: the module text ansible pipes (captured with keep_remote_files),
     fed through the connection master to the interpreter, as ansible's pipelined exec does.

3. The collect phase of a fan-out (ssh/collect.yml), pipelining on, round trip RTT: each of
   5 hosts starts JOBS jobs of random length (1-6 s, the same seeds for every side) with
   poll: 0 in a loop, then collects them: stock's async_status until-loop (delay: 1), ours with
   the same loop, ours with one async_job wait. Per side: the phase's wall time, SSH commands
   per host (-vvv), the module text piped per host, and lateness (the last job's end to the
   collect task's end). Written to ssh-collect.md and ssh-collect.json; `--only collect` (or
   ASYNC_BENCH_SSH_ONLY=collect from run.sh) runs just this figure.

    .venv/core-2.19/bin/python tests/bench/ssh_bench.py [--rounds 3] [--hosts 5] [--rtt 20]
    .venv/core-2.19/bin/python tests/bench/ssh_bench.py --only collect [--collect-rounds 3] [--jobs 20]

Writes target/bench/ssh-results.md and ssh-results.json (figures 1 and 2), ssh-collect.md and
ssh-collect.json (figure 3).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))

from harness import ssh_sandbox  # noqa: E402
from harness.wait import wait_until  # noqa: E402
from harness.ssh_sandbox import Ansible  # noqa: E402

SIDES = ("stock", "ours")
# The collect figure's sides: (library, how the jobs are collected).
COLLECTORS = (("stock", "until"), ("ours", "until"), ("ours", "wait"))
ACTION_PLUGINS = REPO / "action_plugins"
SSH_EXEC = re.compile(r"^<([^>]+)> SSH: EXEC ")


class Bench:
    def __init__(self, sshd, controller, tmp: Path, hosts: int):
        self.sshd, self.controller, self.tmp, self.hosts = sshd, controller, tmp, hosts
        self.runs = 0

    def library(self, side: str, work: Path) -> Path:
        if side == "ours":
            return ssh_sandbox.LIBRARY
        library = work / "stock-library"
        library.mkdir(exist_ok=True)
        for name in ("async_wrapper", "async_status"):
            (library / f"{name}.py").write_bytes(self.controller.stock_module_source(name).read_bytes())
        return library

    def sandbox(self, label: str, rtt_ms: float, hosts: int, cfg: str = "") -> tuple[Ansible, Path]:
        self.runs += 1
        work = self.tmp / f"{self.runs:03d}-{label}"
        work.mkdir()
        ansible = Ansible(self.controller, self.sshd, work)
        (work / "ansible.cfg").write_text("[defaults]\n" + cfg)
        python = "/usr/bin/python3"
        lines = ["[targets]"]
        for n in range(1, hosts + 1):
            address = f"127.0.0.{10 + n}"
            proxy = ""
            if rtt_ms:
                proxy = (f" -o ProxyCommand=\"{sys.executable} {HERE / 'ssh' / 'relay.py'} {rtt_ms / 2} %h %p\"")
            lines.append(
                f"h{n} ansible_host={address} ansible_port={self.sshd.port} ansible_user=root "
                f"ansible_ssh_private_key_file={self.sshd.key} ansible_python_interpreter={python} "
                f"ansible_remote_tmp={work / 'remote-tmp'} ansible_control_path=%(directory)s/h{n} "
                f"ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null{proxy}'")
        inventory = work / "inventory"
        inventory.write_text("\n".join(lines) + "\n")
        return ansible, inventory

    def play(self, side: str, pipelining: bool, rtt_ms: float) -> float:
        ansible, inventory = self.sandbox(f"play-{side}", rtt_ms, self.hosts)
        try:
            result = ansible.run(str(HERE / "ssh" / "play.yml"), inventory, pipelining=pipelining,
                                 forks=self.hosts, library=self.library(side, ansible.tmp))
            result.assert_ok(hosts=self.hosts)
            return result.seconds
        finally:
            ansible.stop_everything()

    def polls_in_playbook(self, side: str, rtt_ms: float, polls: int) -> list[float]:
        times = self.tmp / f"item-times-{self.runs + 1}"
        cfg = f"callback_plugins = {HERE / 'ssh'}\ncallbacks_enabled = item_times\n"
        ansible, inventory = self.sandbox(f"poll-{side}", rtt_ms, 1, cfg)
        os.environ["ASYNC_BENCH_ITEM_TIMES"] = str(times)
        try:
            result = ansible.run(str(HERE / "ssh" / "poll.yml"), inventory, pipelining=True,
                                 library=self.library(side, ansible.tmp), extra_vars={"polls": polls})
            result.assert_ok(hosts=1)
        finally:
            ansible.stop_everything()
        stamps = [float(line.split("\t")[1]) for line in times.read_text().splitlines()
                  if line.split("\t")[0] in ("POLLS", "START POLLS")]
        return [b - a for a, b in zip(stamps, stamps[1:])]

    def module_text(self, side: str) -> tuple[bytes, str]:
        """The async_status module text ansible pipes for a poll, and its interpreter: kept on
        the host by a run with keep_remote_files and pipelining off. Its job ends at once, so
        replaying it polls a finished job."""
        ansible, inventory = self.sandbox(f"capture-{side}", 0, 1, "keep_remote_files = True\n")
        try:
            ansible.run(str(HERE / "ssh" / "poll.yml"), inventory, pipelining=False,
                        library=self.library(side, ansible.tmp),
                        extra_vars={"polls": 1, "job_seconds": 0}).assert_ok(hosts=1)
            # The poll may have come before the module's end: the job must be over before
            # everything the run started is stopped, or the replays poll a killed job.
            wait_until(lambda: jobs_over(ansible.async_dir), timeout=60, what="the captured poll's job to end")
        finally:
            ansible.stop_everything()
        found = sorted((ansible.tmp / "remote-tmp").glob("ansible-tmp-*/AnsiballZ_async_status*"))
        text = found[-1].read_bytes()
        return text, text.split(b"\n", 1)[0][2:].decode().strip()

    def polls_over_ssh(self, text: bytes, interpreter: str, rtt_ms: float, polls: int) -> list[float]:
        """The pipelined exec alone, `polls` times through one connection master."""
        ansible, inventory = self.sandbox("ssh-exec", rtt_ms, 1)
        control = ansible.cp_dir / "h1"
        base = ["ssh", "-p", str(self.sshd.port), "-i", str(self.sshd.key), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "ControlMaster=auto", "-o", "ControlPersist=60s", "-o", f"ControlPath={control}"]
        if rtt_ms:
            base += ["-o", f"ProxyCommand={sys.executable} {HERE / 'ssh' / 'relay.py'} {rtt_ms / 2} %h %p"]
        base.append("root@127.0.0.11")
        times = []
        try:
            subprocess.run(base + ["true"], check=True, capture_output=True, timeout=60)  # the master
            for _ in range(polls):
                start = time.monotonic()
                done = subprocess.run(base + [f"/bin/sh -c '{interpreter} && sleep 0'"], input=text,
                                      capture_output=True, timeout=60)
                times.append(time.monotonic() - start)
                assert done.returncode == 0 and b"ansible_job_id" in done.stdout, done
        finally:
            ansible.stop_everything()
        return times


def jobs_over(async_dir: Path) -> bool:
    """Whether every job file in `async_dir` holds a result (JSON without `started`)."""
    for job in async_dir.glob("j*"):
        if job.name.endswith(".log"):
            continue
        try:
            if "started" in json.loads(job.read_text()):
                return False
        except (OSError, ValueError):
            return False
    return True


class Collect:
    """The collect figure: one run of ssh/collect.yml per side and round."""

    def __init__(self, bench: Bench, hosts: int, jobs: int, rtt_ms: float):
        self.bench, self.hosts, self.jobs, self.rtt_ms = bench, hosts, jobs, rtt_ms
        self.cfg = (f"callback_plugins = {HERE / 'ssh'}\ncallbacks_enabled = phase_times\n"
                    f"action_plugins = {ACTION_PLUGINS}\n")

    def durations(self, seed: int, hosts: int) -> dict[str, list[float]]:
        """JOBS lengths of 1 to 6 s per host, from `seed`: the same for every side."""
        rng = random.Random(seed)
        return {f"h{n}": [round(rng.uniform(1, 6), 1) for _ in range(self.jobs)] for n in range(1, hosts + 1)}

    def run(self, side: str, how: str, durations: dict, *, hosts: int, rtt_ms: float, extra_cfg: str = "",
            pipelining: bool = True):
        ansible, inventory = self.bench.sandbox(f"collect-{side}-{how}", rtt_ms, hosts, self.cfg + extra_cfg)
        times = ansible.tmp / "phase-times"
        os.environ["ASYNC_BENCH_PHASE_TIMES"] = str(times)
        try:
            result = ansible.run(str(HERE / "ssh" / "collect.yml"), inventory, pipelining=pipelining,
                                 forks=hosts, library=self.bench.library(side, ansible.tmp), timeout=600,
                                 extra_vars={"durations": durations, "how": how}, args=("-vvv",))
            if result.rc != 0:  # keep the whole -vvv log: the work dir goes at the end
                logs = sorted(ansible.tmp.glob("run-*.log"))
                if logs:
                    shutil.copy(logs[-1], self.bench.out / f"ssh-collect-failed-{side}-{how}.log")
            result.assert_ok(hosts=hosts)
        finally:
            ansible.stop_everything()
        events = [json.loads(line) for line in times.read_text().splitlines()]
        return ansible, result, events

    def measure(self, side: str, how: str, seed: int) -> dict:
        durations = self.durations(seed, self.hosts)
        _, result, events = self.run(side, how, durations, hosts=self.hosts, rtt_ms=self.rtt_ms)
        task = f"COLLECT {how}"
        starts = [e for e in events if e["event"] == "task"]
        names = [e["task"] for e in starts]
        begin = starts[names.index(task)]["time"]
        end = starts[names.index(task) + 1]["time"]  # the next task's start: every host is done
        done = {e["host"]: e for e in events if e["event"] == "done" and e["task"] == task}
        assert len(done) == self.hosts and not any(e["failed"] for e in done.values()), done
        for host, e in done.items():
            assert len(e["job_ends"]) == self.jobs, (host, e)
        last_job = max(max(e["job_ends"]) for e in done.values())
        # SSH commands per host during the collect task, from -vvv.
        commands: dict[str, int] = {}
        current = False
        for line in result.stdout.splitlines():
            if line.startswith("TASK [") or line.startswith("PLAY RECAP"):
                current = line.startswith(f"TASK [{task}]")
                continue
            found = SSH_EXEC.match(line)
            if found and current:
                commands[found.group(1)] = commands.get(found.group(1), 0) + 1
        assert len(commands) == self.hosts, commands
        return {"seconds": end - begin, "lateness": end - last_job, "commands": sorted(commands.values()),
                "host_lateness": sorted(e["time"] - max(e["job_ends"]) for e in done.values())}

    def module_bytes(self, side: str, how: str) -> int:
        """The module text ansible pipes for one collect call (the arguments written in): kept
        on the host by a run with keep_remote_files (pipelining off), jobs of no length."""
        ansible, _, _ = self.run(side, how, {"h1": [0] * self.jobs}, hosts=1, rtt_ms=0,
                                 extra_cfg="keep_remote_files = True\n", pipelining=False)
        name = "async_status" if how == "until" else "async_job"
        found = sorted((ansible.tmp / "remote-tmp").glob(f"ansible-tmp-*/AnsiballZ_{name}*"))
        assert found, f"no AnsiballZ_{name} kept"
        return max(len(path.read_bytes()) for path in found)


class Poll5:
    """The poll: 5 figure: ssh/poll5.yml per side, stock (its modules, ansible's own actions)
    against ours (library/ and the release's action plugins), the async dir under `~`."""

    def __init__(self, bench: Bench, hosts: int, rtt_ms: float):
        self.bench, self.hosts, self.rtt_ms = bench, hosts, rtt_ms
        rng = random.Random(5)
        self.durations = {f"h{n}": [round(rng.uniform(3, 12), 1) for _ in range(3)] for n in range(1, hosts + 1)}

    def run(self, side: str, verbose: bool, modules: bool = True) -> tuple[float, dict[str, list[str]]]:
        """One run of the play; without `modules`, every module runs 0 s (what the play costs
        besides its modules)."""
        durations = self.durations if modules else {host: [0, 0, 0] for host in self.durations}
        cfg = f"action_plugins = {ACTION_PLUGINS}\n" if side == "ours" else ""
        ansible, inventory = self.bench.sandbox(f"poll5-{side}", self.rtt_ms, self.hosts, cfg)
        # The sshd's sessions see its private root home as ~ (tests/harness/sshd.py).
        home_dir = self.bench.sshd.root_home / f".ansible_async-{ansible.mark}"
        try:
            result = ansible.run(str(HERE / "ssh" / "poll5.yml"), inventory, pipelining=True, forks=self.hosts,
                                 library=self.bench.library(side, ansible.tmp), timeout=600,
                                 extra_vars={"durations": durations, "home_async_dir": f"~/{home_dir.name}"},
                                 args=("-vvv",) if verbose else ())
            result.assert_ok(hosts=self.hosts)
        finally:
            ansible.stop_everything()
            shutil.rmtree(home_dir, ignore_errors=True)
        # Each task's SSH commands, every host's, in order, by kind.
        commands: dict[str, list[str]] = {}
        current = None
        for line in result.stdout.splitlines():
            if line.startswith("TASK [") or line.startswith("PLAY RECAP"):
                current = line[6:line.index("]")] if line.startswith("TASK [POLL5") else None
                continue
            if current and SSH_EXEC.match(line):
                kind = "echo ~" if "echo ~" in line else "other"
                commands.setdefault(current, []).append(kind)
        return result.seconds, commands


# The poll: 5 figure's runs in a round: (side, with its modules); each first in turn.
POLL5_RUNS = (("stock", True), ("ours", True), ("ours", False))


def poll5_figure(bench: Bench, options, data: dict) -> list[str]:
    figure = Poll5(bench, options.hosts, options.poll5_rtt)
    seconds = {side: [] for side in SIDES}
    # The target: ours within the modules' time plus what the same play costs ours with modules
    # of 0 s (the launches, the status calls that see the ends, the cleanups). That play runs in
    # every round beside the others, so both halves of the comparison see the same load (on a
    # shared machine, runs minutes apart do not).
    without_modules = []
    for n in range(options.rounds):
        for side, modules in POLL5_RUNS[n % 3:] + POLL5_RUNS[:n % 3]:
            took = figure.run(side, verbose=False, modules=modules)[0]
            (seconds[side] if modules else without_modules).append(took)
    counted = {side: figure.run(side, verbose=True)[1] for side in SIDES}
    overhead = statistics.median(without_modules)
    # The play's modules, task by task: a task ends when its slowest host's module does.
    modules = sum(max(d[k] for d in figure.durations.values()) for k in range(3))
    per_task = {side: sum(len(c) for c in counted[side].values()) / (3 * options.hosts) for side in SIDES}
    echoes = {side: sum(c.count("echo ~") for c in counted[side].values()) for side in SIDES}
    # Status calls: what is neither the launch (5 commands: mkdir, 2 uploads, chmod, exec) nor an echo.
    calls = {side: sum(len(c) for c in counted[side].values()) - echoes[side] - 5 * 3 * options.hosts
             for side in SIDES}
    per_call = {side: (calls[side] + echoes[side]) / calls[side] for side in SIDES}
    data["poll5"] = {"durations": figure.durations, "modules_seconds": modules, "seconds": seconds,
                     "commands_per_task": per_task, "status_calls": calls, "echo": echoes,
                     "commands_per_status_call": per_call, "rtt_ms": options.poll5_rtt,
                     "ours_without_modules_seconds": overhead, "ours_without_modules": without_modules}
    stock, ours = statistics.median(seconds["stock"]), statistics.median(seconds["ours"])
    # What the modules add to ours' play, round by round (both runs of a round see the same
    # load): the target is that this is the modules' time, nothing more.
    added = [with_modules - without for with_modules, without in zip(seconds["ours"], without_modules)]
    data["poll5"]["ours_added_by_modules"] = added
    label = (f"{options.hosts}-host play, 3 `poll: 5` tasks, modules 3–12 s ({modules:.1f} s of them), "
             f"`~/` async dir, pipelining on, round trip {options.poll5_rtt:g} ms")
    rows = [f"| {label} | s | {stock:.1f} ({min(seconds['stock']):.1f}–{max(seconds['stock']):.1f}) | "
            f"{ours:.1f} ({min(seconds['ours']):.1f}–{max(seconds['ours']):.1f}) | {stock / ours:.2f}× | "
            f"ours ≤ {modules:.1f} + {overhead:.1f} (the play with 0 s modules); per round, ours minus its play "
            f"with 0 s modules: {statistics.median(added):.1f} ({min(added):.1f}–{max(added):.1f}) against "
            f"{modules:.1f} {'✓' if statistics.median(added) <= modules else '✗'} |",
            f"| the same: SSH commands per status call (poll or cleanup) | commands | {per_call['stock']:.1f} | "
            f"{per_call['ours']:.1f} | | 1 |",
            f"| the same: SSH commands per task and host (launch, polls, cleanup) | commands | "
            f"{per_task['stock']:.1f} | {per_task['ours']:.1f} | | |"]
    for row in rows:
        print(row, flush=True)
    return rows


def collect_figure(bench: Bench, options, data: dict) -> list[str]:
    collect = Collect(bench, options.hosts, options.jobs, options.rtt)
    sizes = {f"{side} {how}": collect.module_bytes(side, how) for side, how in COLLECTORS}
    runs: dict[str, list[dict]] = {f"{side} {how}": [] for side, how in COLLECTORS}
    for n in range(options.collect_rounds):
        order = COLLECTORS[n % 3:] + COLLECTORS[:n % 3]  # each side first in turn
        for side, how in order:
            runs[f"{side} {how}"].append(collect.measure(side, how, seed=n))
            print(f"collect round {n + 1}, {side} {how}: {runs[f'{side} {how}'][-1]}", flush=True)
    summary = {}
    for key, samples in runs.items():
        commands = [c for s in samples for c in s["commands"]]
        summary[key] = {
            "seconds": statistics.median(s["seconds"] for s in samples),
            "seconds_range": (min(s["seconds"] for s in samples), max(s["seconds"] for s in samples)),
            "lateness": statistics.median(s["lateness"] for s in samples),
            "lateness_max": max(s["lateness"] for s in samples),
            "commands": statistics.median(commands),
            "commands_range": (min(commands), max(commands)),
            "kb": statistics.median(commands) * sizes[key] / 1000,
        }
    data["collect"] = {"hosts": options.hosts, "jobs": options.jobs, "rtt_ms": options.rtt,
                       "rounds": options.collect_rounds, "module_bytes": sizes, "runs": runs, "summary": summary}
    stock, until, wait = summary["stock until"], summary["ours until"], summary["ours wait"]
    rtt_s = options.rtt / 1000
    fan = f"collect {options.jobs} jobs × {options.hosts} hosts, round trip {options.rtt:g} ms"
    speedup = stock["seconds"] / wait["seconds"]

    def secs(s):
        lo, hi = s["seconds_range"]
        return f"{s['seconds']:.1f} ({lo:.1f}–{hi:.1f})"

    rows = [
        f"| {fan}, ours until-loop | s | {secs(stock)} | {secs(until)} | {stock['seconds'] / until['seconds']:.2f}× | |",
        f"| {fan}, ours one wait | s | {secs(stock)} | {secs(wait)} | {speedup:.2f}× | "
        f"≥ 3× {'✓' if speedup >= 3 else '✗'} |",
    ]
    table = ["| side | collect phase, s | SSH commands per host | module text piped per host, KB | "
             "lateness, s (median, max) |", "|---|---:|---:|---:|---:|"]
    for key, label in (("stock until", "stock, until-loop (delay: 1)"), ("ours until", "ours, until-loop (delay: 1)"),
                       ("ours wait", "ours, one `mode: wait`")):
        s = summary[key]
        lo, hi = s["commands_range"]
        table.append(f"| {label} | {secs(s)} | {s['commands']:g} ({lo}–{hi}) | {s['kb']:.0f} | "
                     f"{s['lateness']:.2f} ({s['lateness_max']:.2f}) |")
    targets = (f"Targets: the wait ≥ 3× faster than stock's until-loop: {speedup:.2f}× "
               f"{'✓' if speedup >= 3 else '✗'}; 1 SSH command per host: at most "
               f"{wait['commands_range'][1]} {'✓' if wait['commands_range'][1] == 1 else '✗'}; lateness ≤ 0.1 s + "
               f"one round trip ({0.1 + rtt_s:.2f} s): at most {wait['lateness_max']:.3f} s "
               f"{'✓' if wait['lateness_max'] <= 0.1 + rtt_s else '✗'}.")
    head = (f"ansible-core {options.controller}, OpenSSH on loopback, round trip ~{options.rtt:g} ms (relay), "
            f"pipelining on, ControlPersist on, forks {options.hosts}, an absolute async dir, -vvv; each host "
            f"starts {options.jobs} jobs of 1–6 s (`poll: 0`, a loop) then collects them; "
            f"{options.collect_rounds} rounds, sides alternating, the same job lengths for every side in a round; "
            f"medians (min–max). Lateness: from the last job's end (its own `date`) to the collect task's end.\n\n")
    (bench.out / "ssh-collect.md").write_text(
        head + "\n".join(table) + "\n\n" + targets + "\n\n"
        "| figure | unit | stock | ours | stock/ours | target |\n|---|---|---:|---:|---:|---|\n"
        + "\n".join(rows) + "\n")
    (bench.out / "ssh-collect.json").write_text(json.dumps(data["collect"], indent=1) + "\n")
    print(head + "\n".join(table) + "\n\n" + targets)
    return rows


def median_ms(values):
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--rtt", type=float, default=20.0, help="the longer round trip, ms")
    parser.add_argument("--polls", type=int, default=25)
    parser.add_argument("--controller", default="2.19")
    parser.add_argument("--poll5-rtt", type=float, default=50.0, help="the poll: 5 figure's round trip, ms")
    parser.add_argument("--only", choices=("play", "poll", "collect", "poll5"),
                        default=os.environ.get("ASYNC_BENCH_SSH_ONLY") or None)
    parser.add_argument("--collect-rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20, help="jobs per host in the collect figure")
    options = parser.parse_args()
    out = REPO / "target" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ssh-bench-"))
    try:
        run(options, tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(options, tmp: Path, out: Path) -> None:
    (tmp / "sshd").mkdir()
    addresses = tuple(f"127.0.0.{10 + n}" for n in range(1, options.hosts + 1))
    rows, data = [], {"controller": options.controller, "hosts": options.hosts, "rounds": options.rounds,
                      "rtt_ms": [0, options.rtt], "play": {}, "poll": {}}
    with ssh_sandbox.running_sshd(tmp / "sshd", addresses) as sshd:
        bench = Bench(sshd, ssh_sandbox.controller(options.controller), tmp, options.hosts)
        bench.out = out
        if options.only == "collect":
            collect_figure(bench, options, data)
            return
        if options.only in (None, "poll5"):
            rows += poll5_figure(bench, options, data)
        if options.only in (None, "play"):
            for rtt in (0, options.rtt):
                for pipelining in (False, True):
                    seconds = {side: [] for side in SIDES}
                    for n in range(options.rounds):
                        for side in (SIDES if n % 2 == 0 else SIDES[::-1]):
                            seconds[side].append(bench.play(side, pipelining, rtt))
                    key = f"pipelining {'on' if pipelining else 'off'}, round trip {rtt:g} ms"
                    data["play"][key] = seconds
                    stock, ours = statistics.median(seconds["stock"]), statistics.median(seconds["ours"])
                    target = "≥ 1.3×" if pipelining else "≥ 1×"
                    ok = stock / ours >= (1.3 if pipelining else 1.0)
                    rows.append(f"| {options.hosts}-host play, {key} | s | {stock:.1f} ({min(seconds['stock']):.1f}–"
                                f"{max(seconds['stock']):.1f}) | {ours:.1f} ({min(seconds['ours']):.1f}–"
                                f"{max(seconds['ours']):.1f}) | {stock / ours:.2f}× | {target} {'✓' if ok else '✗'} |")
                    print(rows[-1], flush=True)
        if options.only in (None, "poll"):
            texts = {side: bench.module_text(side) for side in SIDES}
            data["poll"]["module_bytes"] = {side: len(texts[side][0]) for side in SIDES}
            for rtt in (0, options.rtt):
                seen = {side: [] for side in SIDES}
                alone = {side: [] for side in SIDES}
                for n in range(options.rounds):
                    for side in (SIDES if n % 2 == 0 else SIDES[::-1]):
                        seen[side] += bench.polls_in_playbook(side, rtt, options.polls)
                        alone[side] += bench.polls_over_ssh(*texts[side], rtt, options.polls)
                data["poll"][f"round trip {rtt:g} ms"] = {"in ansible-playbook": seen, "ssh exec alone": alone}
                for label, samples in (("as ansible-playbook sees it (loop item to item)", seen),
                                       ("the pipelined SSH exec alone", alone)):
                    stock, ours = median_ms(samples["stock"]), median_ms(samples["ours"])
                    rows.append(f"| one async_status poll, pipelining on, round trip {rtt:g} ms, {label}, "
                                f"median of {len(samples['ours'])} | ms | {stock:.0f} | {ours:.0f} | "
                                f"{stock / ours:.2f}× | ≥ 3× {'✓' if stock / ours >= 3 else '✗'} |")
                    print(rows[-1], flush=True)
            rows.append(f"| module text piped per poll | KB | {data['poll']['module_bytes']['stock'] / 1000:.0f} | "
                        f"{data['poll']['module_bytes']['ours'] / 1000:.1f} | "
                        f"{data['poll']['module_bytes']['stock'] / data['poll']['module_bytes']['ours']:.0f}× | |")
        if options.only is None:
            rows += collect_figure(bench, options, data)
    head = (f"ansible-core {options.controller}, OpenSSH on loopback (private sshd, {options.hosts} loopback "
            f"addresses), ControlPersist on, forks {options.hosts}, {options.rounds} rounds, stock and ours "
            f"alternating; medians (min–max).\n\n"
            "| figure | unit | stock | ours | stock/ours | target |\n|---|---|---:|---:|---:|---|\n")
    (out / "ssh-results.md").write_text(head + "\n".join(rows) + "\n")
    (out / "ssh-results.json").write_text(json.dumps(data, indent=1) + "\n")
    print(head + "\n".join(rows))


if __name__ == "__main__":
    main()
