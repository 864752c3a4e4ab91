"""Absolute URLs the app hands out (enrolment links, calendar feeds).

They leave the request (QR codes, printed sheets, calendar programs), so they are built from
the configured public address, ``PUBLIC_BASE_URL``, never from a request's Host header.
"""

from __future__ import annotations

from flask import current_app


def public_url(path: str, *, scheme: str | None = None) -> str:
    """``PUBLIC_BASE_URL`` + ``path`` (which starts with ``/``); ``scheme`` replaces the
    base's scheme (``webcal`` for calendar subscriptions)."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    if scheme is not None:
        base = scheme + base[base.index("://"):]
    return base + path
