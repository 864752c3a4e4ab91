"""``/api/v1/auth``: login, token refresh with rotation, logout, me, password change."""

from __future__ import annotations

import uuid

from flask import g, request
from flask_smorest import Blueprint

from backend import audit
from backend.auth import auth_required, current_user
from backend.auth.passwords import hash_password, verify_password
from backend.auth.signin import authenticate
from backend.auth.tokens import (
    RefreshReuseDetected,
    TokenError,
    issue_token_pair,
    revoke_all_families,
    revoke_family,
    rotate_refresh_token,
)
from backend.errors import RefreshTokenReused, Unauthenticated
from backend.extensions import db
from backend.http.problems import problem
from backend.models.accounts import User
from backend.unit_of_work import transactional
from schemas.accounts import (
    LoginSchema,
    PasswordChangeSchema,
    RefreshSchema,
    TokenPairSchema,
    UserSchema,
)

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Sign in and tokens.")


def current_family_id() -> uuid.UUID:
    """Sign-in (refresh family) of the request's access token."""
    return uuid.UUID(g.token_claims["fam"])


@blp.route("/login", methods=["POST"])
@transactional
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, response="UNAUTHORIZED")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def login(credentials: dict) -> dict:
    """Exchange email and password for an access and a refresh token.

    Failed attempts are limited per account and per client address (429 with
    Retry-After). Unknown email, wrong password and deactivated account give
    the same 401.
    """
    user = authenticate(credentials["email"], credentials["password"], request.remote_addr or "unknown")
    return issue_token_pair(user)


@blp.route("/refresh", methods=["POST"])
@transactional
@blp.arguments(RefreshSchema)
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, response="UNAUTHORIZED")
def refresh(body: dict) -> dict:
    """Exchange a refresh token for a new pair (the old refresh token stops working).

    Presenting an already-exchanged refresh token revokes the whole sign-in.
    """
    try:
        user, tokens = rotate_refresh_token(body["refresh_token"])
    except RefreshReuseDetected as reuse:
        reused_by = db.session.get(User, reuse.user_id)
        audit.record("auth.refresh_reuse", "user", reuse.user_id, actor=None,
                     clinic_id=reused_by.clinic_id if reused_by else None)
        raise RefreshTokenReused() from None
    except TokenError:
        raise Unauthenticated("The refresh token is invalid, expired or revoked.",
                              slug="invalid-refresh-token") from None
    return tokens


@blp.route("/logout", methods=["POST"])
@auth_required()
@transactional
@blp.response(204)
def logout() -> None:
    """End this sign-in: its refresh token and access tokens stop working."""
    revoke_family(current_family_id(), "logout")
    audit.record("auth.logout", "user", current_user().id)


@blp.route("/me", methods=["GET"])
@auth_required()
@blp.response(200, UserSchema)
def me() -> User:
    """The signed-in user."""
    return current_user()


@blp.route("/password", methods=["POST"])
@auth_required()
@transactional
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
def change_password(body: dict) -> None:
    """Change the own password; every other sign-in of the account ends."""
    user = current_user()
    if not verify_password(user.password_hash, body["current_password"]):
        problem(422, "The current password is wrong.", type_="wrong-current-password",
                errors={"current_password": ["Wrong password."]})
    user.password_hash = hash_password(body["new_password"])
    revoke_all_families(user.id, "password-changed", keep=current_family_id())
    audit.record("auth.password_changed", "user", user.id)
