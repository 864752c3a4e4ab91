"""The dashboard's form framework: one way every page form is read, checked and submitted.

- **CSRF**: every POST carries the session's ``csrf_token`` (:func:`backend.dashboard.views.check_csrf`).
- **Validation** through the *same* marshmallow schema the API loads (``schemas``), so a rule
  holds on both paths; errors are shown next to their field, the form keeps what was typed.
  Domain errors of the services (``ValidationFailed``, ``Conflict`` ...) are shown the same way.
  An invalid form answers 422 (the unit of work rolls back: nothing half-written).
- **Submit once**: each rendered form carries a fresh one-time ``form_token``; the first
  successful submission stores its redirect in the idempotency table (the API's
  ``Idempotency-Key`` records, scope ``dashboard:<user id>``) in the same transaction as the
  rows it created. A second submission of that token (a double click, a reload of the POST) is
  sent to the same place and creates nothing; two concurrent ones collide on the unique key.
- Works without JavaScript: plain HTML forms, POST-redirect-GET.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar

import marshmallow as ma
from flask import Response, g, redirect, render_template, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from backend.errors import DomainError, NotFound
from backend.http.idempotency import find_record, store_redirect
from backend.unit_of_work import in_savepoint, response_succeeded, run_unit_of_work, view_response

F = TypeVar("F", bound=Callable[..., Any])

FORM_TOKEN_FIELD = "form_token"
_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
#: Form fields that are plumbing, not data.
_PLUMBING = {"csrf_token", FORM_TOKEN_FIELD}
#: Fields never sent back into a re-rendered form (a password stays out of the HTML).
_SECRET_FIELDS = {"password"}
#: Key of errors that concern the whole form (marshmallow's convention, also used by services).
FORM_ERRORS = "_schema"


def new_form_token() -> str:
    """A fresh one-time token for one rendered form."""
    return secrets.token_urlsafe(24)


#: Marker field sent with a group of checkboxes, so that "none ticked" is an answer, not an omission.
LIST_PRESENT_SUFFIX = "__present"
_INTEGER = re.compile(r"^[+-]?\d{1,15}$")


def form_values(schema: ma.Schema, form: Any = None, keep_blank: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request's form data in the shape ``schema`` loads (what JSON would carry).

    A blank field is left out (the schema's default or "required" applies), or is None where the
    schema allows None (clearing an optional value on an edit form), or "" for ``keep_blank``
    (free text that may be emptied); list fields take every value of their name (checkboxes);
    whole numbers typed into integer fields become numbers (JSON would carry them so; the
    API's integer fields are strict).
    """
    form = request.form if form is None else form
    data: dict[str, Any] = {}
    for name, field in schema.load_fields.items():
        if isinstance(field, ma.fields.List):
            values = [value for value in form.getlist(name) if value.strip()]
            if values or name + LIST_PRESENT_SUFFIX in form:
                data[name] = values
            continue
        if name not in form:
            continue
        value = form.get(name, "").strip()
        if value == "":
            if name in keep_blank:
                data[name] = ""
            elif field.allow_none:
                data[name] = None
            continue
        if isinstance(field, ma.fields.Integer) and _INTEGER.match(value):
            data[name] = int(value)
        else:
            data[name] = value
    return data


class Form:
    """One page form: its schema, what was typed, and the errors by field.

    Parameters
    ----------
    schema : marshmallow.Schema
        The API's schema for this input (instance; ``partial`` for edit forms).
    initial : mapping, optional
        Values shown on first display (an edit form's current values).
    keep_blank : tuple of str
        Free-text fields an edit form may empty (see :func:`form_values`).
    """

    def __init__(self, schema: ma.Schema, initial: Mapping[str, Any] | None = None,
                 keep_blank: tuple[str, ...] = ()) -> None:
        self.schema = schema
        self.keep_blank = keep_blank
        self.values: dict[str, Any] = dict(initial or {})
        self.errors: dict[str, list[str]] = {}
        self.data: dict[str, Any] = {}
        self.token = new_form_token()

    @property
    def submitted(self) -> bool:
        return request.method == "POST"

    def validate(self, extra: Mapping[str, Any] | None = None) -> bool:
        """Load the submitted form through the schema; True when it is valid.

        ``extra`` are values the page adds (not typed by the user), e.g. a fixed scope.
        """
        raw = {**form_values(self.schema, keep_blank=self.keep_blank), **(extra or {})}
        self.values = {key: value for key, value in request.form.items(multi=False)
                       if key not in _PLUMBING | _SECRET_FIELDS}
        for name, field in self.schema.load_fields.items():
            if isinstance(field, ma.fields.List):
                self.values[name] = request.form.getlist(name)
        try:
            self.data = self.schema.load(raw)
        except ma.ValidationError as error:
            self.errors = _flatten(error.messages)
            return False
        return True

    def refuse(self, error: DomainError) -> None:
        """Show a service's refusal on the form (by field where it says which)."""
        if error.errors:
            for name, messages in error.errors.items():
                self.errors.setdefault(name, []).extend(messages)
        else:
            self.errors.setdefault(FORM_ERRORS, []).append(error.detail)

    def attempt(self, action: Callable[[dict[str, Any]], Response]) -> Response | None:
        """Run ``action(data)`` (services, audit, redirect) unless a domain rule refuses it.

        A ``NotFound`` is not a form error (the page answers 404); other refusals become form
        errors and None is returned, so the page renders the form again. The action runs in a
        savepoint: a refused action leaves nothing behind, not even pending changes.
        """
        try:
            return in_savepoint(lambda: action(self.data))
        except NotFound:
            raise
        except DomainError as error:
            self.refuse(error)
            return None

    def value(self, name: str, default: Any = "") -> Any:
        value = self.values.get(name, default)
        return default if value is None else value

    def render(self, template: str, **context: Any) -> tuple[str, int]:
        """The page with this form; 422 when the submission was refused (rolls back)."""
        status = 422 if self.errors else 200
        if self.errors:
            self.token = new_form_token()  # a corrected resubmission is a new submission
        return render_template(template, form=self, **context), status


def _flatten(messages: Any) -> dict[str, list[str]]:
    """marshmallow's nested messages as ``{field: [text]}`` (nested keys joined by dots)."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(node, list) and all(isinstance(item, str) for item in node):
            flat.setdefault(prefix or FORM_ERRORS, []).extend(node)
        else:
            flat.setdefault(prefix or FORM_ERRORS, []).append(str(node))

    walk("", messages)
    if isinstance(messages, list):
        flat = {FORM_ERRORS: [str(item) for item in messages]}
    return flat


def _fingerprint() -> str:
    parts = sorted((key, value) for key, value in request.form.items(multi=True) if key not in _PLUMBING)
    return hashlib.sha256(repr((request.path, parts)).encode()).hexdigest()


def submit_once(check_csrf: Callable[[], None]) -> Callable[[F], F]:
    """Run a form page in the unit of work; a successful POST (a redirect) happens once per form token.

    GET renders; POST checks CSRF, then either replays the stored redirect of this token or runs
    the view, storing its redirect just before the commit.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            def work() -> Response:
                return view_response(view, *args, **kwargs)

            if request.method != "POST":
                return run_unit_of_work(work, succeeded=response_succeeded)
            check_csrf()
            token = request.form.get(FORM_TOKEN_FIELD, "")
            if not _TOKEN_PATTERN.match(token):
                return Response("This form is missing its one-time token; reload the page.", status=400,
                                mimetype="text/plain")
            scope = f"dashboard:{g.dashboard_user.id}"
            stored = find_record(scope, token)
            if stored is not None:
                return redirect(stored.response_location or request.path, code=303)

            def remember(response: Response) -> None:
                if 300 <= response.status_code < 400:
                    store_redirect(scope, token, _fingerprint(), response)

            try:
                return run_unit_of_work(work, succeeded=response_succeeded, before_commit=remember)
            except (HTTPException, DomainError, IntegrityError):
                stored = find_record(scope, token)  # a concurrent submission of this form won the race
                if stored is None:
                    raise
                return redirect(stored.response_location or request.path, code=303)

        return wrapper  # type: ignore[return-value]

    return decorate
