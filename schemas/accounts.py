"""Schemas of authentication, users and the audit log."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from schemas.common import CursorArgsSchema

#: Roles a clinic admin may create accounts for (patients enrol by invitation).
STAFF_ROLES = ("clinician", "researcher", "admin")
ROLES = ("patient", "clinician", "researcher", "admin")

PASSWORD_MIN_LENGTH = 10
#: Upper bound keeps hashing cost bounded.
PASSWORD_MAX_LENGTH = 1024


def password_field(**kwargs) -> fields.String:
    """A new password: 10..1024 characters, not only whitespace."""
    return fields.String(
        required=True,
        load_only=True,
        validate=[
            validate.Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH),
            validate.Predicate("strip", error="Password must not be blank."),
        ],
        metadata={"description": f"{PASSWORD_MIN_LENGTH}..{PASSWORD_MAX_LENGTH} characters."},
        **kwargs,
    )


class LoginSchema(ma.Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=320))
    password = fields.String(required=True, load_only=True,
                             validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH))


class RefreshSchema(ma.Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class TokenPairSchema(ma.Schema):
    access_token = fields.String(required=True, metadata={"description": "JWT (HS256) for `Authorization: Bearer`."})
    token_type = fields.String(required=True, metadata={"description": "Always `Bearer`."})
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime in seconds."})
    refresh_token = fields.String(required=True, metadata={
        "description": "Opaque; single use - each refresh returns a new one. Reusing an old one "
                       "ends the sign-in."})
    refresh_expires_in = fields.Integer(required=True, metadata={"description": "Refresh token lifetime in seconds."})


class PasswordChangeSchema(ma.Schema):
    current_password = fields.String(required=True, load_only=True,
                                     validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH))
    new_password = password_field()


class UserSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    email = fields.String(dump_only=True)
    role = fields.String(dump_only=True, metadata={"enum": list(ROLES)})
    clinic_id = fields.UUID(dump_only=True)
    display_name = fields.String(dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    last_login_at = fields.DateTime(dump_only=True, allow_none=True)


class UserCreateSchema(ma.Schema):
    email = fields.Email(required=True, validate=validate.Length(max=320))
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    display_name = fields.String(load_default="", validate=validate.Length(max=200))
    password = password_field()


class UserListArgsSchema(CursorArgsSchema):
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()


class AuditEventSchema(ma.Schema):
    seq = fields.Integer(dump_only=True)
    at = fields.DateTime(dump_only=True)
    actor_user_id = fields.UUID(dump_only=True, allow_none=True)
    actor_role = fields.String(dump_only=True, allow_none=True)
    action = fields.String(dump_only=True)
    object_type = fields.String(dump_only=True, allow_none=True)
    object_id = fields.String(dump_only=True, allow_none=True)
    client_address = fields.String(dump_only=True, allow_none=True)
    request_id = fields.String(dump_only=True, allow_none=True)
    details = fields.Dict(dump_only=True)
    prev_hash = fields.String(dump_only=True)
    hash = fields.String(dump_only=True)


class AuditListArgsSchema(CursorArgsSchema):
    action = fields.String(validate=validate.Length(min=1, max=80))


class AuditVerificationSchema(ma.Schema):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True, metadata={"description": "Rows examined."})
    first_broken_seq = fields.Integer(allow_none=True, required=True)
    reason = fields.String(allow_none=True, required=True,
                           metadata={"enum": ["gap", "prev-hash-mismatch", "hash-mismatch", None]})
