"""The wrapper's notices reach syslog (so journalctl shows async jobs), as ansible-core's own
wrapper sends them."""

import os
import socket
from pathlib import Path

import pytest

from harness.wait import wait_until

DEV_LOG = Path("/dev/log")


@pytest.fixture
def syslog():
    """A stand-in syslog daemon on /dev/log; only where no real one listens there."""
    if DEV_LOG.exists() or DEV_LOG.is_symlink():
        pytest.skip("a syslog daemon owns /dev/log here; its journal is not ours to read")
    if os.geteuid() != 0:
        pytest.skip("needs root to listen on /dev/log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(DEV_LOG))
    sock.settimeout(0.05)
    try:
        yield sock
    finally:
        sock.close()
        DEV_LOG.unlink()


def test_notices_go_to_syslog(host, syslog):
    jid = host.start("echo '{\"rc\": 0}'")
    host.finished(jid)
    seen = []

    def got_result():
        # Drain what is there: other jobs on the host may be logging too.
        try:
            while True:
                seen.append(syslog.recv(4096).decode(errors="replace"))
        except socket.timeout:
            pass
        return any(f"{jid} result state=finished" in line for line in seen)

    wait_until(got_result, timeout=10, what="the result notice")
    text = "\n".join(seen)
    assert "ansible-async_wrapper[" in text
    assert f"{jid} Invoked with j1 60 " in text
    assert f"{jid} started pid=" in text


def test_a_syslog_that_does_not_keep_up_does_not_hold_jobs(host, syslog):
    # Fill the daemon's queue until it would block, and never read it.
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    try:
        while True:
            sender.sendto(b"<13>filler: x", str(DEV_LOG))
    except BlockingIOError:
        pass
    finally:
        sender.close()
    jid = host.start("echo '{\"rc\": 0}'", limit=5)
    assert host.finished(jid) == {"rc": 0}
