"""Clinician dashboard: server-rendered pages under ``/dashboard`` (same app, same users).

Sign-in with email and password (the API's verification and login rate limits) into a
signed session cookie (Secure, HttpOnly, SameSite=Strict); a per-session CSRF token on every
form; clinicians and admins see only their clinic's patients (others' answer 404, exactly like
missing ones); every photo or overlay shown is audited. Pages load scripts and styles only from
``/dashboard/static`` so the Content-Security-Policy forbids inline code.
"""

from __future__ import annotations

from flask import Flask

#: Content-Security-Policy of dashboard responses: nothing inline, nothing from elsewhere.
DASHBOARD_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def init_dashboard(app: Flask) -> None:
    """Register the dashboard blueprint and its session cookie settings.

    ``DASHBOARD_COOKIE_SECURE`` (environment, default true) may be set false only for plain-HTTP
    setups other than localhost (browsers accept Secure cookies from http://localhost).
    """
    import datetime as dt

    from backend.dashboard import admin, clinic, repeatability, research  # noqa: F401 - register the workspace pages on bp
    from backend.dashboard.views import bp

    app.config.update(
        SESSION_COOKIE_NAME="skintrack_dashboard",
        SESSION_COOKIE_SECURE=bool(app.config["DASHBOARD_COOKIE_SECURE"]),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/dashboard",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=8),
    )
    app.register_blueprint(bp)
