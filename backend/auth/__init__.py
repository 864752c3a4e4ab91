"""Authentication of API requests: ``@auth_required(*roles)`` and ``current_user()``.

Signing in (email and password, for every way in) is :func:`backend.auth.signin.authenticate`;
this module checks the access token of each request afterwards. Tokens come in ``Authorization: Bearer <access token>``. A token is accepted
when its signature and expiry are valid, its user exists and is active, and
its sign-in (refresh family) has not been revoked - so logout and refresh-token
reuse end access immediately, not only at expiry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from copy import deepcopy
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from backend.auth.tokens import TokenError, decode_access_token, family_is_active
from backend.extensions import db
from backend.http.problems import problem
from backend.models.accounts import ROLE_VALUES, User

F = TypeVar("F", bound=Callable[..., Any])

_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="skintrack"'}


def _unauthorised(detail: str) -> None:
    problem(401, detail, type_="unauthenticated", headers=_BEARER_CHALLENGE)


def bearer_user() -> User:
    """Authenticate the current request from its bearer token and return the user.

    Raises a 401 problem when the token is missing or not acceptable.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        _unauthorised("A bearer access token is required.")
    try:
        claims = decode_access_token(token.strip())
        user_id = uuid.UUID(claims["sub"])
        family_id = uuid.UUID(claims["fam"])
    except (TokenError, ValueError):
        _unauthorised("The access token is invalid or expired.")
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or not family_is_active(family_id):
        _unauthorised("The access token is no longer valid.")
    g.current_user = user
    g.token_claims = claims
    return user


def auth_required(*roles: str) -> Callable[[F], F]:
    """Require an authenticated user, optionally with one of ``roles``.

    Parameters
    ----------
    *roles : str
        Allowed roles (patient, clinician, researcher, admin); none = any role.

    Notes
    -----
    Unauthenticated -> 401; authenticated with another role -> 403. The
    OpenAPI operation gets the bearer security requirement and the 401/403
    problem responses.
    """
    unknown = set(roles) - set(ROLE_VALUES)
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = bearer_user()
            if roles and user.role not in roles:
                problem(403, "Your role may not use this endpoint.", type_="forbidden-role")
            return view(*args, **kwargs)

        # flask-smorest reads _apidoc: document security and error responses.
        apidoc = deepcopy(getattr(view, "_apidoc", {}))
        apidoc["manual_doc"] = {**apidoc.get("manual_doc", {}), "security": [{"bearerAuth": []}]}
        responses = apidoc.setdefault("response", {}).setdefault("responses", {})
        responses.setdefault(401, []).append("UNAUTHORIZED")
        if roles:
            responses.setdefault(403, []).append("FORBIDDEN")
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def current_user() -> User:
    """The user authenticated by ``@auth_required`` for this request.

    Raises
    ------
    RuntimeError
        If called outside a view protected by ``@auth_required``.
    """
    user = g.get("current_user")
    if user is None:
        raise RuntimeError("current_user() needs @auth_required on the view")
    return user


def optional_current_user() -> User | None:
    """The authenticated user, or None on anonymous endpoints."""
    return g.get("current_user")
