"""Interactive API docs at ``/api/v1/docs``: Swagger UI served by the app itself.

The Swagger UI files come from the PyPI package ``swagger-ui-bundle`` (installed with the
app), so the page works offline and under a strict Content-Security-Policy: no CDN, no inline
script or style; ``swagger-init.js`` (ours) starts the UI on ``/api/v1/openapi.json``.
flask-smorest's own Swagger UI page (CDN, inline script) is switched off in
``backend.config.derived_config``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, render_template, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

#: CSP of the docs page and its assets: only this app's files; the spec is fetched from here.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
#: The Swagger UI files the page loads (the rest of the package is not served).
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
_OWN_STATIC = Path(__file__).parent / "api_docs_static"

bp = Blueprint("api-docs-ui", __name__, url_prefix="/api/v1/docs", template_folder="templates")


@bp.get("")
def swagger_ui() -> str:
    """The Swagger UI page of the API's OpenAPI document."""
    return render_template("api_docs.html", spec_url=url_for("api-docs.openapi_json"))


@bp.get("/assets/<path:filename>")
def asset(filename: str) -> Response:
    """A Swagger UI file of the packaged bundle, or our start-up script."""
    if filename == "swagger-init.js":
        return send_from_directory(_OWN_STATIC, filename, max_age=3600)
    if filename not in SWAGGER_ASSETS:
        return Response("Not found", status=404, mimetype="text/plain")
    return send_from_directory(swagger_ui_path, filename, max_age=3600)


@bp.after_request
def _docs_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


def init_api_docs(app: Flask) -> None:
    """Register the docs page (``/api/v1/docs``)."""
    app.register_blueprint(bp)
