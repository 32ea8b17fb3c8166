"""Waiting for a condition with a deadline: the tests' only way to wait for something to
happen (a job to finish, a process to go), never a sleep of a guessed length."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def poll_until(condition: Callable[[], T], *, timeout: float, interval: float = 0.05) -> T:
    """Calls `condition` until it returns a true value or `timeout` seconds have passed;
    returns its last value (false when the time ran out)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def wait_until(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Like poll_until, but a timeout fails the test (AssertionError naming `what`)."""
    value = poll_until(condition, timeout=timeout, interval=interval)
    if not value:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return value
