"""The patient web app (installable PWA) under ``/app/``: static files only.

Everything the app does goes through the public JSON API (``/api/v1``) with bearer tokens, as
a native app would: this package serves the shell (HTML, JavaScript modules, styles, the web
app manifest and the service worker) and nothing else. No template, no session, no data: the
shell is the same for every visitor and can be cached for offline use.

The Content-Security-Policy forbids inline code and other origins; the camera is allowed for
this origin only (Permissions-Policy).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, send_from_directory

STATIC_DIR = Path(__file__).parent / "static"

#: Content-Security-Policy of the app: own scripts and styles only; photos are shown from
#: ``blob:`` URLs (fetched with the bearer token), the camera preview is a media stream.
APP_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
           "media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
           "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
PERMISSIONS_POLICY = "camera=(self), microphone=(), geolocation=()"

bp = Blueprint("patient_app", __name__, url_prefix="/app", static_folder=str(STATIC_DIR),
               static_url_path="/static")


def _no_cache(response: Response) -> Response:
    # The shell and the worker must be revalidated, or a deployed fix never reaches phones.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/", methods=["GET"])
def shell() -> Response:
    """The app's single page (its views are drawn by ``static/js/main.js``)."""
    return _no_cache(send_from_directory(STATIC_DIR, "index.html", max_age=0))


@bp.route("/sw.js", methods=["GET"])
def service_worker() -> Response:
    """The service worker, served from ``/app/`` so that its scope is the whole app."""
    response = send_from_directory(STATIC_DIR, "sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/app/"
    return _no_cache(response)


@bp.route("/manifest.webmanifest", methods=["GET"])
def manifest() -> Response:
    """The web app manifest (name, icons, start URL, display mode) that makes it installable."""
    return _no_cache(send_from_directory(STATIC_DIR, "manifest.webmanifest",
                                         mimetype="application/manifest+json", max_age=0))


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = APP_CSP
    response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
    return response


def init_patient_app(app: Flask) -> None:
    """Register the app's blueprint."""
    app.register_blueprint(bp)
