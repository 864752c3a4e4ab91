"""Pruning: delete bookkeeping rows that no rule needs any more (``flask --app backend prune``, daily).

Login attempts older than LOGIN_FAILURE_WINDOW no longer count; idempotency records older than
IDEMPOTENCY_KEY_TTL are past their promised replay time; revoked sign-ins and sign-ins whose
refresh tokens all expired are dead.
"""

from __future__ import annotations

from backend.auth.ratelimit import prune_login_attempts
from backend.auth.tokens import prune_dead_families
from backend.extensions import db
from backend.http.idempotency import prune_idempotency_records


def prune() -> dict[str, int]:
    """Delete the rows no rule needs any more, commit, and count them by kind."""
    counts = {
        "login attempts": prune_login_attempts(),
        "idempotency records": prune_idempotency_records(),
        "refresh token families": prune_dead_families(),
    }
    db.session.commit()
    return counts
