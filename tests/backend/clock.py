"""A controllable clock for time-dependent rules (no sleeping in tests)."""

from __future__ import annotations

import datetime as dt


class FakeClock:
    """Callable returning a fixed UTC time that tests move forward explicitly."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        """Move time forward by ``datetime.timedelta(**delta)``."""
        self.current += dt.timedelta(**delta)
