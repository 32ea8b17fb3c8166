"""What a running job is doing, as real ansible-playbook runs see it (ansible-core 2.19, 2.21 and
2.22: both wrapper protocols and the newest controller): the `progress` of a running job's
status (its processes, the files it writes, the tail of the file ASYNC_WRAPPER_TAIL names),
none of its command lines or tail for a `no_log` task, none at all for a job of ansible's own
wrapper or a finished job; and the async_progress callback's line per host per poll (2.14 and
2.22, with ansible's default and yaml result formats).

Each run has its own temp dirs and async dir; the jobs end themselves (a stop file), and the
fixture ends whatever a failed test left running. Needs `make build` and the controller venvs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.controllers import controller as find_controller
from harness.env import ansible_env
from harness.jobs import kill_jobs, wait_running
from harness.procs import is_alive
from harness.paths import LIBRARY, REPO
from harness.recap import assert_recap_ok, parse_recap
from harness.wait import wait_until

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE / "playbooks"
CALLBACKS = REPO / "callback_plugins"


class Run:
    """ansible-playbook on localhost with one controller, in a test's own temp dirs."""

    def __init__(self, version: str, tmp: Path):
        self.controller = find_controller(version)
        self.tmp = tmp
        self.async_dir = tmp / "async"
        self.library = [LIBRARY]
        self.env = {}

    def __call__(self, playbook: str, hosts=("localhost",), **variables) -> str:
        for name in ("local", "remote"):
            (self.tmp / name).mkdir(exist_ok=True)
        localhost = {"ansible_connection": "local", "ansible_python_interpreter": str(self.controller.python),
                     "ansible_async_dir": str(self.async_dir)}
        inventory = self.tmp / "inventory.json"
        inventory.write_text(json.dumps({"all": {"hosts": {host: localhost for host in hosts}}}))
        (self.tmp / "ansible.cfg").write_text("[defaults]\n")
        env = ansible_env(ANSIBLE_CONFIG=str(self.tmp / "ansible.cfg"),
                          ANSIBLE_LIBRARY=":".join(str(p) for p in self.library),
                          ANSIBLE_LOCAL_TEMP=str(self.tmp / "local"), ANSIBLE_REMOTE_TEMP=str(self.tmp / "remote"),
                          ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_FORCE_COLOR="0", **self.env)
        variables.setdefault("t", str(self.tmp))
        command = [str(self.controller.ansible_playbook), "-i", str(inventory), "-e", json.dumps(variables),
                   str(PLAYBOOKS / playbook)]
        run = subprocess.run(command, cwd=self.tmp, env=env, capture_output=True, text=True, timeout=300,
                             stdin=subprocess.DEVNULL)
        print(f"----- ansible-core {self.controller.version}: {playbook}\n{run.stdout}{run.stderr}")
        assert run.returncode == 0, f"{playbook} failed: see the captured stdout"
        assert "STOCK async_" not in run.stdout + run.stderr, "a stub of ansible's stock modules ran"
        assert_recap_ok(parse_recap(run.stdout), see=playbook)
        return run.stdout

    def read(self, name: str) -> dict:
        return json.loads((self.tmp / name).read_text())


@pytest.fixture
def run(request, tmp_path):
    runner = Run(request.param, tmp_path)
    yield runner
    kill_jobs(runner.async_dir)


def file_entry(status: dict, path: str) -> dict:
    matches = [f for f in status["progress"]["writing"] if f["path"] == path]
    assert len(matches) == 1, status["progress"]
    return matches[0]


@pytest.mark.parametrize("run", ["2.19", "2.21", "2.22"], indirect=True)
def test_a_dumps_processes_the_file_it_writes_and_its_log(run):
    nonce = "n%d" % id(run)
    run("dump.yml", quiet=False, nonce=nonce)
    polls = run.read("polls.json")
    dump = str(run.tmp / "dump.bin")
    for poll in polls.values():
        progress = poll["progress"]
        assert poll["finished"] is False and poll["started"] is True
        assert len(json.dumps(progress)) <= 4096
        processes = progress["processes"]
        assert 1 <= len(processes) <= 8
        assert progress["totals"]["count"] >= len(processes)
        assert {"pid", "ppid", "name", "args", "state", "cpu", "rss", "age"} <= set(processes[0]), processes[0]
        shell = [p for p in processes if dump in p["args"] and "head -c 200000" in p["args"]]
        assert shell and shell[0]["name"] == "sh", processes
        assert all(p["state"] in ("running", "sleeping", "disk wait", "stopped", "zombie") for p in processes)
        ages = [p["age"] for p in processes]
        assert ages == sorted(ages), "newest first"
        assert progress["tail"]["path"] == str(run.tmp / "dump.log")
        assert progress["tail"]["lines"][-1] == f"wrote a block {nonce}", progress["tail"]
        assert "no_log" not in progress
    first, second = (file_entry(polls[k], dump) for k in ("first", "second"))
    assert first["size"] % 200000 == 0 and second["size"] > first["size"], (first, second)
    assert second["mtime"] >= first["mtime"]
    # The module's captured output, which the supervisor holds unlinked, is not listed.
    assert all("(deleted)" not in f["path"] for f in polls["second"]["progress"]["writing"])
    final = run.read("final.json")
    assert final["finished"] is True and final["rc"] == 0
    assert "progress" not in final, "a finished job's result is what the module returned"


@pytest.mark.parametrize("run", ["2.19", "2.21", "2.22"], indirect=True)
def test_a_no_log_task_shows_no_command_lines_and_no_tail(run):
    nonce = "secret%d" % id(run)
    out = run("dump.yml", quiet=True, nonce=nonce)
    polls = run.read("polls.json")
    dump = str(run.tmp / "dump.bin")
    for poll in polls.values():
        progress = poll["progress"]
        assert progress["no_log"] is True
        assert "tail" not in progress
        assert all("args" not in p for p in progress["processes"]), progress["processes"]
        assert {"sh", "sleep"} & {p["name"] for p in progress["processes"]}, progress["processes"]
        assert nonce not in json.dumps(poll)
    # The file it writes is still shown: it is a file, not the command line or its output.
    assert file_entry(polls["second"], dump)["size"] > file_entry(polls["first"], dump)["size"]
    assert nonce not in out


@pytest.mark.parametrize("run", ["2.19", "2.22"], indirect=True)
def test_a_job_of_ansibles_own_wrapper_is_reported_as_before(run):
    stock = run.tmp / "stock-wrapper"
    stock.mkdir()
    shutil.copyfile(run.controller.stock_module_source("async_wrapper"), stock / "async_wrapper.py")
    run.library = [stock, LIBRARY]
    run("stock.yml")
    polls = run.read("polls.json")
    running = polls["running"]
    assert running["finished"] in (0, False) and "progress" not in running, running
    assert not list(run.async_dir.glob("*.log")), "our wrapper writes a log: the stock one ran"
    assert polls["final"]["finished"] in (1, True) and "progress" not in polls["final"]


POLL = re.compile(r"^ASYNC POLL on (\S+): jid=\S+ started=\S+ finished=\S+$")


@pytest.mark.parametrize("run,result_format", [("2.14", "json"), ("2.22", "yaml")], indirect=["run"])
def test_the_callback_prints_a_line_per_host_under_each_poll(run, result_format):
    run.env = {"ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS), "ANSIBLE_CALLBACKS_ENABLED": "async_progress",
               "ANSIBLE_CALLBACK_RESULT_FORMAT": result_format, "ANSIBLE_NOCOLOR": "1", "COLUMNS": "100"}
    out = run("callback.yml", hosts=("one", "two"))
    lines = out.splitlines()
    polls = [n for n, line in enumerate(lines) if POLL.match(line)]
    assert len(polls) >= 4, out
    for host in ("one", "two"):
        mine = [n for n in polls if POLL.match(lines[n]).group(1) == host]
        assert mine, out
        for n in mine:
            shown = lines[n + 1]
            assert shown.startswith(f"  {host}: ["), shown
            assert len(shown) <= 100, shown
        # A later poll shows the file written and how much it grew.
        assert any(f"{host}.bin" in lines[n + 1] and "(+" in lines[n + 1] for n in mine), out
    progress_lines = [line for line in lines if re.match(r"^  (one|two): \[", line)]
    assert len(progress_lines) == len(polls), "one line per host per poll"
    assert "\x1b[" not in out, "no colour with ansible's colour off"


# ----------------------------------------------------------------------------------------------
# On the host: async_job list, top and show --follow, as a person runs them (no ansible).

def start_job(tmp: Path, body: str) -> tuple[Path, str]:
    """A job of library/async_wrapper as ansible ≤ 2.20 starts it, in a private async dir; the
    async dir and the job id."""
    async_dir = tmp / "async"
    module = tmp / "ansible-tmp-1-2-3" / "AnsiballZ_command.py"
    module.parent.mkdir(exist_ok=True)
    module.write_text("#!/bin/sh\n# {\"_ansible_no_log\": false}\n" + body)
    module.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "ANSIBLE_ASYNC_DIR": str(async_dir)}
    run = subprocess.run(["/bin/sh", str(LIBRARY / "async_wrapper"), "j1", "60", str(module), "_"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return async_dir, json.loads(run.stdout)["ansible_job_id"]


@pytest.fixture
def host_job(tmp_path):
    stop = tmp_path / "stop"
    body = (f'exec 3>>"{tmp_path}/dump.bin"\n'
            f'while [ ! -e "{stop}" ]; do head -c 200000 /dev/zero >&3; sleep 1; done\n'
            'echo \'{"changed": true, "rc": 0}\'\n')
    async_dir, jid = start_job(tmp_path, body)
    wait_running(async_dir, jid, timeout=30)
    program = next((async_dir / ".bin").glob("ansible-async-*"))
    yield async_dir, jid, program, stop
    kill_jobs(async_dir)


def async_job(program: Path, async_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(program), "async_job", "--async-dir", str(async_dir), *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_list_names_the_module_sorts_running_first_and_shows_progress(host_job, tmp_path):
    async_dir, jid, program, _ = host_job
    older = async_dir / "j9.9"
    older.write_text('{"rc": 0}')
    older.chmod(0o600)
    listed = wait_until(lambda: (lambda r: r if r["jobs"][0].get("progress", {}).get("writing") else None)(
        json.loads(async_job(program, async_dir, "--json", "list").stdout)), timeout=30, what="the file written")
    first = listed["jobs"][0]
    assert (first["jid"], first["state"], first["module_name"]) == (jid, "running", "command")
    assert first["progress"]["writing"][0]["path"] == str(tmp_path / "dump.bin")
    assert [j["jid"] for j in listed["jobs"]] == [jid, "j9.9"]
    assert "progress" not in listed["jobs"][1]
    text = async_job(program, async_dir, "list").stdout.splitlines()
    assert text[1].split()[:2] == [jid, "running"] and text[1].split()[-1] == "command", text
    assert any(line.startswith(f"  {jid}: ") and "writing" in line for line in text), text


def test_top_without_a_terminal_prints_once(host_job):
    async_dir, jid, program, _ = host_job
    top = async_job(program, async_dir, "top")
    assert top.returncode == 0, top.stderr
    assert "\x1b[" not in top.stdout
    assert top.stdout.startswith("async_job top  ")
    assert f"{jid} command" in top.stdout and "COMMAND" in top.stdout, top.stdout


def test_show_follow_follows_the_job_until_it_ends(host_job):
    async_dir, jid, program, stop = host_job
    follow = subprocess.Popen([str(program), "async_job", "--async-dir", str(async_dir), "show", jid, "--follow"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        stop.touch()
        out, err = follow.communicate(timeout=60)
    finally:
        follow.kill()
    assert follow.returncode == 0, err
    assert f"{jid}  running" in out  # the table, first
    assert " started pid=" in out and " result state=finished" in out, out  # the log, as it grew
    assert f"{jid} finished:" in out and '"rc": 0' in out, out


def test_show_follow_ends_when_the_job_is_cleaned_up(host_job):
    async_dir, jid, program, stop = host_job
    supervisor = json.loads((async_dir / jid).read_text())["supervisor"]["pid"]
    follow = subprocess.Popen([str(program), "async_job", "--async-dir", str(async_dir), "show", jid, "--follow"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        first = []
        while not any(line.startswith("log ") for line in first):  # it has found the job
            line = follow.stdout.readline()
            assert line, follow.stderr.read()
            first.append(line)
        # What async_status mode=cleanup does; the job itself runs on.
        (async_dir / jid).unlink()
        (async_dir / f"{jid}.log").unlink()
        out, err = follow.communicate(timeout=60)
    finally:
        follow.kill()
        # The job ends itself (its file is gone, so the fixture could not find it to end it).
        stop.touch()
        wait_until(lambda: not is_alive(supervisor), timeout=30, what="the job's end")
    assert follow.returncode == 0, err
    assert f"{jid}: its job file was removed (cleaned up) before its end was seen" in out, out
