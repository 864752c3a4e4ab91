"""Handlers by job kind, and the errors handlers raise."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: A handler takes the job's context and returns an optional result reference (<= 200 chars).
Handler = Callable[["JobContext"], "str | None"]

_HANDLERS: dict[str, Handler] = {}


@dataclass(frozen=True)
class JobContext:
    """What a handler gets.

    Attributes
    ----------
    job_id : uuid.UUID
        The job's id.
    kind : str
        The job's kind.
    payload : dict
        The JSON payload given to ``enqueue`` (object ids only).
    attempt : int
        1 for the first run, 2 for the first retry, ...
    """

    job_id: uuid.UUID
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1


class JobError(Exception):
    """A failure whose message is safe to store and show (no health data, no secrets).

    Other exceptions are recorded by type name only. The job is retried.
    """


class PermanentJobError(JobError):
    """A failure that retrying cannot fix (e.g. the photo was deleted): fail at once."""


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``kind``.

    Handlers must be idempotent: a job can run more than once (a worker that
    died mid-job, a lost lease). Read what you need, end that transaction,
    compute, then leave your writes pending in ``db.session``: the runner
    commits them in the same transaction that marks the job done.

    Parameters
    ----------
    kind : str
        1-64 characters, e.g. ``"analyse_photo"``.

    Raises
    ------
    ValueError
        If another function is already registered for ``kind``.
    """
    if not 1 <= len(kind) <= 64:
        raise ValueError("job kind must be 1-64 characters")

    def register(handler: Handler) -> Handler:
        existing = _HANDLERS.get(kind)
        # Re-importing the same module (e.g. a test module loaded twice) re-registers the same function.
        if existing is not None and existing.__qualname__ != handler.__qualname__:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        _HANDLERS[kind] = handler
        return handler

    return register


def handler_for(kind: str) -> Handler | None:
    """Return the handler registered for ``kind``, or ``None``."""
    return _HANDLERS.get(kind)
