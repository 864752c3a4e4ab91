"""One request, one transaction: the unit of work every view runs in.

A view's writes (rows, audit events, enqueued jobs) go into the request's session and commit
once, when the view has succeeded; otherwise everything rolls back:

- the view returns a response with status < 400 -> commit;
- it returns a response with status >= 400, or raises -> roll back;
- it raises a domain error whose ``keeps_changes`` is set (a refused sign-in: its failed
  attempt must be counted) -> commit, then the error goes on to be answered.

Views and services never commit or roll back themselves. Work outside the database that must
follow the transaction's fate (deleting a written file when its row did not commit) is
registered with :func:`after_transaction` and runs once the unit has ended, committed or not.
:mod:`backend.http.idempotency` runs its views through :func:`run_unit_of_work` too, storing
the response to replay just before the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, make_response

from backend.errors import DomainError
from backend.extensions import db

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

log = logging.getLogger(__name__)

#: Key in ``db.session.info`` of the callbacks waiting for the end of the current unit of work.
_AFTER_TRANSACTION = "after_transaction"


def after_transaction(callback: Callable[[bool], None]) -> None:
    """Run ``callback(committed)`` when the current unit of work has ended.

    ``committed`` is True when the commit succeeded; False after a rollback *or* a failed
    commit (whose outcome may be unknown when the database went away: callbacks that delete
    something check for themselves). Outside a unit of work (a CLI command committing
    itself), the callbacks are dropped with the session.
    """
    db.session.info.setdefault(_AFTER_TRANSACTION, []).append(callback)


def end_unit_of_work(commit: bool) -> None:
    """Commit or roll back the session, then run the waiting callbacks with the outcome (requests
    end here through :func:`run_unit_of_work`, jobs through the job runner)."""
    committed = False
    try:
        if commit:
            try:
                db.session.commit()
                committed = True
            except BaseException:
                db.session.rollback()
                raise
        else:
            db.session.rollback()
    finally:
        for callback in db.session.info.pop(_AFTER_TRANSACTION, []):
            callback(committed)


def run_unit_of_work(work: Callable[[], T], *, succeeded: Callable[[T], bool],
                     before_commit: Callable[[T], None] | None = None) -> T:
    """Run ``work`` as one transaction: commit if it succeeded, else roll back.

    Parameters
    ----------
    work : callable
        Does the unit's reads and writes; must not commit.
    succeeded : callable
        Whether ``work``'s result is a success (to commit) or a refusal (to roll back).
    before_commit : callable, optional
        Called with the result just before committing a success (adds rows that depend on it).

    Returns
    -------
    The result of ``work``.

    Raises
    ------
    Whatever ``work`` or the commit raised, after the rollback (or, for a domain error that
    keeps changes, after the commit).
    """
    try:
        result = work()
    except DomainError as error:
        end_unit_of_work(commit=error.keeps_changes)
        raise
    except BaseException:
        end_unit_of_work(commit=False)
        raise
    if not succeeded(result):
        end_unit_of_work(commit=False)
        return result
    if before_commit is not None:
        try:
            before_commit(result)
        except BaseException:
            end_unit_of_work(commit=False)
            raise
    end_unit_of_work(commit=True)
    return result


def response_succeeded(response: Response) -> bool:
    """A response whose status is below 400 (redirects after a dashboard sign-in included)."""
    return response.status_code < 400


def view_response(view: Callable[..., Any], *args: Any, **kwargs: Any) -> Response:
    """Call a view and make a :class:`flask.Response` of what it returned."""
    return make_response(current_app.ensure_sync(view)(*args, **kwargs))


def transactional(view: F) -> F:
    """Run a view in a unit of work (see the module docstring).

    Place it outside ``@blp.response`` (it needs the serialised response) and inside the
    authentication decorator; creating POSTs use ``@idempotent`` instead, which does the same.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        return run_unit_of_work(lambda: view_response(view, *args, **kwargs), succeeded=response_succeeded)

    return wrapper  # type: ignore[return-value]


def in_savepoint(work: Callable[[], T]) -> T:
    """Run ``work`` in a savepoint of the current unit of work.

    If it raises, what it wrote (flushed or pending) is undone and the request's transaction
    stays usable, so a page can show a refusal and render the form again with the rows as they
    were (the unit of work still rolls the whole request back when the page answers >= 400).
    """
    with db.session.begin_nested():
        return work()
