"""Figure 6, the ansible-playbook run: what the async modules change in a real play.

playbooks/fleet.yml on --hosts (10) local hosts, ansible's default 5 forks: each host starts 5
`poll: 0` jobs of `sleep 1`, collects them with async_status (`until`, `delay: 1`), runs one
`poll: 1` task, cleans up. --fleet-runs (3) runs per flavour, alternating; the wall time and CPU
of the whole ansible-playbook process tree (wait4), and the `until` loop's retries. No run is
added once the next pair would pass --budget seconds since the bench started.

With the breakdown (the default; --no-breakdown, or no /bin/bash, goes without), a bash script is
ANSIBLE_EXECUTABLE: ansible runs every host-side command as `<executable> -c CMD`, and the script
runs it with /bin/sh and leaves one record per command (wall clock, its own CPU and the command's
from bash `times`, the start of the command line). That splits the tree's CPU into host-side (the
commands) and controller (the rest, less the timing script's own), and by kind of command. The
script's cost per command is measured apart: `-c true` under it against plain `/bin/sh -c`.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from pathlib import Path

from report import fmt, pair
from rig import FLAVOURS, HERE
from timing import BenchError, log, run_measured, stats

NUMBER = 6
TITLE = "ansible-playbook, {hosts} hosts"
# per flavour in results.json, as {flavour: stats} of the runs
SUMMED = ("wall", "cpu", "controller_cpu", "host_cpu", "host_wall_sum", "host_commands",
          "timing_shell_cpu", "status_retries", "async_modules_cpu", "async_modules_wall_sum")


def timesh(rig) -> Path:
    """ANSIBLE_EXECUTABLE of the breakdown: runs `-c CMD` with /bin/sh and writes one record per
    command to $ASYNC_BENCH_TIMES. Only builtins run after the command."""
    path = rig.work / "timesh"
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


def command_kind(cmd: str) -> str:
    if "umask 77 && mkdir" in cmd or "chmod u+" in cmd or "rm -f -r" in cmd:
        return "tmp dir housekeeping"
    if "async_wrapper" in cmd:
        return "async_wrapper"
    if "async_status" in cmd:
        return "async_status"
    return "other"


def read_times(d: Path) -> dict:
    """The timing script's records of one run, summed, and by kind of command."""
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
        k = kinds.setdefault(command_kind(lines[3] if len(lines) > 3 else ""),
                             {"commands": 0, "cpu": 0.0, "wall_sum": 0.0})
        k["commands"] += 1
        k["cpu"] += sum(kids)
        k["wall_sum"] += float(t1) - float(t0)
    return {"host_commands": n, "host_wall_sum": wall, "host_cpu": host, "timing_shell_cpu": shell,
            "host_by_kind": kinds,
            "async_modules_cpu": sum(v["cpu"] for k, v in kinds.items() if k.startswith("async_")),
            "async_modules_wall_sum": sum(v["wall_sum"] for k, v in kinds.items() if k.startswith("async_"))}


def playbook_run(rig, flavour, i) -> dict:
    """One run of fleet.yml with this flavour's modules, checked: its figures."""
    hosts, breakdown = rig.args.hosts, rig.args.breakdown
    d = rig.work / ("fleet-%s-%d" % (flavour, i))
    (d / "times").mkdir(parents=True)
    inv = d / "inventory"
    async_dir = rig.work / ("fleet-async-" + flavour)
    inv.write_text("".join(
        "h%02d ansible_connection=local ansible_python_interpreter=%s ansible_async_dir=%s\n"
        % (n, rig.python, async_dir) for n in range(1, hosts + 1)))
    extra = {"ANSIBLE_REMOTE_TEMP": d / "remote"}
    if breakdown:
        extra.update(ANSIBLE_EXECUTABLE=timesh(rig), ASYNC_BENCH_TIMES=d / "times")
    env = rig.ansible_env(flavour, "fleet", **extra)
    r = run_measured([str(rig.venv_bin / "ansible-playbook"), "-i", str(inv),
                      str(HERE / "playbooks" / "fleet.yml")], env, cwd=str(d), timeout=900)
    (d / "output.txt").write_text(r.out + r.err)
    rig.sweep("fleet")
    recap = re.findall(r"^h\d+\s+:.*$", r.out, re.M)
    if r.rc != 0 or len(recap) != hosts or not all("failed=0" in x for x in recap):
        raise BenchError("fleet playbook (%s) failed:\n%s" % (flavour, (r.out + r.err)[-3000:]))
    res = {"wall": r.seconds, "cpu": r.cpu, "status_retries": r.out.count("FAILED - RETRYING")}
    if breakdown:
        t = read_times(d / "times")
        res.update(t)
        # the rest of the process tree's CPU is ansible-playbook's own (the controller)
        res["controller_cpu"] = r.cpu - t["host_cpu"] - t["timing_shell_cpu"]
    return res


def timing_overhead_ms(rig) -> float:
    """CPU ms the timing script adds per command, on top of a plain `/bin/sh -c`."""
    plain = [run_measured(["/bin/sh", "-c", "/bin/sh -c true"], rig.env()).cpu for _ in range(20)]
    probe_dir = rig.work / "probe-times"
    probe_dir.mkdir()
    env = rig.env(ASYNC_BENCH_TIMES=probe_dir)
    timed = [run_measured([str(timesh(rig)), "-c", "%s -c true" % timesh(rig)], env).cpu for _ in range(20)]
    return (statistics.median(timed) - statistics.median(plain)) * 1000


def measure(rig) -> None:
    args = rig.args
    if args.breakdown and not os.access("/bin/bash", os.X_OK):
        args.breakdown = False
        rig.notes.append("Figure 6: no controller/host split, /bin/bash is not installed.")
    runs = []
    started = time.monotonic()
    for i in range(args.fleet_runs):
        t = time.monotonic()
        if i > 0 and rig.elapsed() + (t - started) / i > args.budget:
            rig.notes.append("Figure 6 ran %d of %d playbook runs per flavour: the next would have "
                             "passed the %d s time budget." % (i, args.fleet_runs, args.budget))
            break
        for f in rig.order(i):
            res = playbook_run(rig, f, i)
            res["flavour"] = f
            runs.append(res)
            log("playbook %s run %d: %.1f s wall, %.1f s CPU%s" % (
                f, i + 1, res["wall"], res["cpu"],
                ", %d host commands, host CPU %.1f s, controller CPU %.1f s"
                % (res["host_commands"], res["host_cpu"], res["controller_cpu"])
                if "host_cpu" in res else ""))
    out = {"runs": runs}
    for key in SUMMED:
        if all(key in r for r in runs):
            out[key] = {f: stats([r[key] for r in runs if r["flavour"] == f]) for f in FLAVOURS}
    if args.breakdown:
        out["timing_overhead_cpu_ms_per_command"] = timing_overhead_ms(rig)
    rig.results["fleet"] = out


def rows(res) -> list[list]:
    fl = res.get("fleet")
    if not fl:
        return []
    out = [["6 ansible-playbook wall time", "s", *pair(fl["wall"]), "> 1×"],
           ["6 ansible-playbook CPU (whole process tree)", "s", *pair(fl["cpu"]), ""]]
    if "controller_cpu" in fl:
        out += [["6 … controller CPU (ansible-playbook itself)", "s", *pair(fl["controller_cpu"]), ""],
                ["6 … host-side CPU (commands ansible ran on the hosts)", "s", *pair(fl["host_cpu"]), ""],
                ["6 … … of which async_wrapper + async_status calls", "s", *pair(fl["async_modules_cpu"]), ""]]
    return out


def notes(res) -> list[str]:
    fl = res.get("fleet")
    if not fl:
        return []
    text = ("Figure 6: %d hosts (local connection, ansible's default 5 forks), each starting 5 async "
            "`sleep 1` jobs, collecting them with async_status (`until`, `delay: 1`), one `poll: 1` "
            "task, cleanup." % res["meta"]["params"]["hosts"])
    if "host_commands" in fl:
        text += (" Every host-side command ran under a timing shell (about %s ms CPU each, in the wall "
                 "times, left out of both CPU shares): %s (stock) / %s (ours) commands per run, "
                 "their wall times adding up to %s s / %s s."
                 % (fmt(fl["timing_overhead_cpu_ms_per_command"]), fmt(fl["host_commands"]["stock"]["median"]),
                    fmt(fl["host_commands"]["ours"]["median"]), fmt(fl["host_wall_sum"]["stock"]["median"]),
                    fmt(fl["host_wall_sum"]["ours"]["median"])))
        by = {f: next(r for r in fl["runs"] if r["flavour"] == f)["host_by_kind"] for f in FLAVOURS}
        text += (" Host-side commands of the first run by kind (count, CPU s, summed wall s): "
                 + "; ".join("%s: %s" % (f, ", ".join("%s %d / %s / %s" % (k, v["commands"], fmt(v["cpu"]),
                                                                          fmt(v["wall_sum"]))
                                                     for k, v in sorted(by[f].items()))) for f in FLAVOURS) + ".")
    text += (" async_status retries of the `until` loop per run: %s (stock) / %s (ours); CPU of the "
             "detached jobs themselves is in neither share."
             % (fmt(fl["status_retries"]["stock"]["median"]), fmt(fl["status_retries"]["ours"]["median"])))
    return [text]
