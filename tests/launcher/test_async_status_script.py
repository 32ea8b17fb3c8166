"""library/async_status: runs the program async_wrapper left on the host; where that is
missing it answers by itself, and its answers must be the program's."""

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATUS = REPO / "library" / "async_status"
LAUNCHER = REPO / "library" / "async_wrapper"
PROGRAM = REPO / "target" / "programs" / "ansible-async.x86_64"


def args_file(tmp_path, async_dir, jid, mode="status"):
    """The arguments file as ansible writes it for a JSON-args module."""
    path = tmp_path / f"args-{jid.replace('/', '_')}-{mode}"
    path.write_text(json.dumps({
        "jid": jid, "mode": mode, "_async_dir": str(async_dir),
        "_ansible_check_mode": False, "_ansible_no_log": False, "_ansible_verbosity": 0,
    }))
    return path


def script(args):
    done = subprocess.run(["/bin/sh", str(STATUS), str(args)], capture_output=True, text=True, timeout=30)
    return done.returncode, json.loads(done.stdout)


def native(args):
    done = subprocess.run([str(PROGRAM), "async_status", str(args)], capture_output=True, text=True, timeout=30)
    return done.returncode, json.loads(done.stdout)


JOB_FILES = {
    "finished": '{"rc": 0, "stdout": "a \\"quoted\\" } brace", "changed": true}\n',
    "finished-empty": "{}",
    "failed": '{"failed": true, "msg": "boom", "rc": 2}',
    "timeout": '{"child_pid":42,"failed":true,"msg":"Timeout exceeded"}\n',
    "stock-running": '{"started": 1, "finished": 0, "ansible_job_id": "j1.1"}',
    "ours-running": '{"ansible_job_id":"j1.1","finished":false,"started":true,"time_limit":5}\n',
    "running-no-finished": '{"started": true, "ansible_job_id": "j1.1"}',
    "empty": "",
    "garbage": '{"started": tr',
    "not-json": "hello\tworld",
}


@pytest.mark.parametrize("name", sorted(JOB_FILES))
def test_fallback_answers_as_the_program_does(tmp_path, name):
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    (async_dir / "j1.1").write_text(JOB_FILES[name])
    args = args_file(tmp_path, async_dir, "j1.1")
    assert not (async_dir / ".bin").exists()
    code, answer = script(args)
    expected_code, expected = native(args)
    assert code == expected_code
    if name in ("garbage", "not-json"):
        assert answer["failed"] is True and answer["finished"] is True
        assert answer["msg"].startswith("Could not parse job output: ")
    else:
        assert answer == expected


@pytest.mark.parametrize("jid,mode,msg", [
    ("j0.0", "status", "could not find job"),
    ("j0.0", "cleanup", "could not find job"),
    ("../x", "cleanup", "invalid job id"),
    (".hidden", "status", "invalid job id"),
    ("j1.1", "kill", "value of mode must be one of: cleanup, status, got: kill"),
])
def test_fallback_refuses_what_the_program_refuses(tmp_path, jid, mode, msg):
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    (async_dir / "j1.1").write_text("{}")
    (tmp_path / "x").write_text("keep")
    args = args_file(tmp_path, async_dir, jid, mode)
    for run in (script, native):
        code, answer = run(args)
        assert code == 1 and answer["failed"] is True, (run, answer)
        assert answer["msg"].startswith(msg), (run, answer)
    assert (tmp_path / "x").read_text() == "keep"
    assert (async_dir / "j1.1").exists()


def test_fallback_cleanup_removes_the_job_file_and_its_log(tmp_path):
    async_dir = tmp_path / "async"
    async_dir.mkdir(mode=0o700)
    (async_dir / "j1.1").write_text("{}")
    (async_dir / "j1.1.log").write_text("t invoked\n")
    code, answer = script(args_file(tmp_path, async_dir, "j1.1", "cleanup"))
    assert code == 0
    assert answer == {"ansible_job_id": "j1.1", "erased": str(async_dir / "j1.1")}
    assert sorted(p.name for p in async_dir.iterdir()) == []


def test_with_the_program_on_the_host_it_runs_the_program(tmp_path):
    async_dir = tmp_path / "async"
    module = tmp_path / "ansible-tmp-1" / "m"
    module.parent.mkdir()
    module.write_text("#!/bin/sh\nexec sleep 30\n")
    env = {"PATH": "/usr/bin:/bin", "ANSIBLE_ASYNC_DIR": str(async_dir), "HOME": str(tmp_path)}
    started = subprocess.run(["/bin/sh", str(LAUNCHER), "j7", "60", str(module), "_", "-preserve_tmp"],
                             env=env, capture_output=True, text=True, timeout=30, check=True)
    jid = json.loads(started.stdout)["ansible_job_id"]
    try:
        code, answer = script(args_file(tmp_path, async_dir, jid))
        assert code == 0 and answer["finished"] is False
        # Only the program measures how long a job has run.
        assert isinstance(answer["elapsed"], float)
    finally:
        subprocess.run([str(PROGRAM), "async_job", "--async-dir", str(async_dir), "terminate", jid],
                       capture_output=True, timeout=30)
