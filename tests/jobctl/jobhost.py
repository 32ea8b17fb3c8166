"""Helpers for the job-control tests: start real jobs with library/async_wrapper and
look at them with the async_job command (the program async_wrapper caches on the host)."""

import json
import os
import subprocess
import time
from pathlib import Path

from harness.arches import HOST_ARCH
from harness.jobs import read_job, wait_finished, wait_running
from harness.paths import LIBRARY, PROGRAMS

# What the README tells a person on a host to run: the cached ansible-async, as async_job.
PROGRAM = PROGRAMS / f"ansible-async.{HOST_ARCH}"


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

    def start(self, body, limit=60, name=None, **env):
        module = self.module(name or f"m{time.monotonic_ns()}", body)
        out = subprocess.run(
            ["/bin/sh", str(LIBRARY / "async_wrapper"), "j1", str(limit), str(module), "_", "-preserve_tmp"],
            env=self.env(**env), capture_output=True, check=True, timeout=30,
        )
        reply = json.loads(out.stdout)
        assert reply["started"] is True, reply
        return reply["ansible_job_id"]

    def job(self, jid):
        return read_job(self.async_dir, jid)

    def running_job(self, jid):
        """The job file once the module runs (it then records the module's process)."""
        return wait_running(self.async_dir, jid)

    def finished(self, jid):
        return wait_finished(self.async_dir, jid)

    def async_job(self, *args, **env):
        return subprocess.run(
            [str(PROGRAM), "async_job", *args], env=self.env(**env), capture_output=True, text=True, timeout=60,
        )


