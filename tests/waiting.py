"""Waiting in tests for a condition that no event signals (a row changing, a lock being waited on)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.02) -> bool:
    """Check ``condition`` until it is true or ``timeout_s`` has passed, pausing between checks.

    Use an event where the code under test can signal one; this is for states only a query can
    see. The pause keeps the poll from taking a core from the code it waits for.

    Returns
    -------
    bool
        Whether the condition became true in time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
