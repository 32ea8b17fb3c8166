"""make bench, SSH part: stock ansible-core modules against ours over real OpenSSH.

The private sshd of tests/ssh, listening on 127.0.0.1 and on one more loopback address per
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

    .venv/core-2.19/bin/python tests/bench/ssh_bench.py [--rounds 3] [--hosts 5] [--rtt 20]

Writes target/bench/ssh-results.md and ssh-results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "ssh"))

import ssh_harness  # noqa: E402
from ssh_harness import Ansible  # noqa: E402

SIDES = ("stock", "ours")


class Bench:
    def __init__(self, sshd, controller, tmp: Path, hosts: int):
        self.sshd, self.controller, self.tmp, self.hosts = sshd, controller, tmp, hosts
        self.runs = 0

    def library(self, side: str, work: Path) -> Path:
        if side == "ours":
            return ssh_harness.LIBRARY
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


def median_ms(values):
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--rtt", type=float, default=20.0, help="the longer round trip, ms")
    parser.add_argument("--polls", type=int, default=25)
    parser.add_argument("--controller", default="2.19")
    parser.add_argument("--only", choices=("play", "poll"), default=None)
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
    with ssh_harness.running_sshd(tmp / "sshd", addresses) as sshd:
        bench = Bench(sshd, ssh_harness.controller(options.controller), tmp, options.hosts)
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
    head = (f"ansible-core {options.controller}, OpenSSH on loopback (private sshd, {options.hosts} loopback "
            f"addresses), ControlPersist on, forks {options.hosts}, {options.rounds} rounds, stock and ours "
            f"alternating; medians (min–max).\n\n"
            "| figure | unit | stock | ours | stock/ours | target |\n|---|---|---:|---:|---:|---|\n")
    (out / "ssh-results.md").write_text(head + "\n".join(rows) + "\n")
    (out / "ssh-results.json").write_text(json.dumps(data, indent=1) + "\n")
    print(head + "\n".join(rows))


if __name__ == "__main__":
    main()
