"""Helpers for the job-control tests: start real jobs with library/async_wrapper and
look at them with library/async_job."""

import json
import os
import subprocess
import time
from pathlib import Path

from harness.paths import LIBRARY
from harness.wait import wait_until


class Host:
    """An async dir and a place for test modules; starts jobs the way ansible does."""

    def __init__(self, root: Path):
        self.root = root
        self.async_dir = root / "async"
        self.tmp = root / "ansible-tmp-1-2-3"
        self.tmp.mkdir()

    def env(self, **extra):
        env = dict(os.environ, ANSIBLE_ASYNC_DIR=str(self.async_dir))
        env.update(extra)
        return env

    def module(self, name, body):
        path = self.tmp / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
        return path

    def start(self, body, limit=60, **env):
        module = self.module(f"m{time.monotonic_ns()}", body)
        out = subprocess.run(
            ["/bin/sh", str(LIBRARY / "async_wrapper"), "j1", str(limit), str(module), "_", "-preserve_tmp"],
            env=self.env(**env), capture_output=True, check=True, timeout=30,
        )
        reply = json.loads(out.stdout)
        assert reply["started"] is True, reply
        return reply["ansible_job_id"]

    def job(self, jid):
        text = (self.async_dir / jid).read_text()
        return json.loads(text) if text.strip() else {"started": True}

    def running_job(self, jid):
        """The job file once the module runs (it then records the module's process)."""
        return wait_until(lambda: "module_process" in self.job(jid) and self.job(jid), timeout=20,
                          what=f"job {jid} to run its module")

    def finished(self, jid):
        wait_until(lambda: "started" not in self.job(jid), timeout=20, what=f"job {jid} to finish")
        return self.job(jid)

    def async_job(self, *args, **env):
        return subprocess.run(
            [str(LIBRARY / "async_job"), *args], env=self.env(**env), capture_output=True, text=True, timeout=60,
        )


