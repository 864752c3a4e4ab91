"""Enrolment: clinicians invite patients; patients redeem the invitation to sign up."""

from __future__ import annotations

import uuid
from typing import Any

from backend import audit
from backend.auth import auth_required, current_user
from backend.auth.tokens import issue_token_pair
from backend.blueprints.clinical_common import CLINICIANS, audit_change, clinical_blueprint
from backend.extensions import limiter, now
from backend.services import access
from backend.services import enrolment as enrolment_service
from backend.unit_of_work import transactional
from schemas.accounts import TokenPairSchema
from schemas.clinical import EnrolSchema, InvitationCreateSchema, InvitationSchema

blp = clinical_blueprint("enrolment", "Patient invitations and enrolment.")

# Neither POST here takes Idempotency-Key: a stored replay would keep the one-time code or
# the issued tokens in plain text, defeating their hashed storage. Retrying is safe anyway:
# a repeated invitation revokes the earlier one, and a repeated enrolment fails as "used"
# after which the patient signs in with the password they chose.

#: Redemption attempts per client address: with 60-bit codes, guessing stays hopeless.
ENROL_RATE_LIMIT = "10 per minute; 50 per hour"


@blp.route("/patients/<uuid:patient_id>/invitations", methods=["POST"])
@auth_required(*CLINICIANS)
@transactional
@blp.arguments(InvitationCreateSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.response(201, InvitationSchema)
def create_invitation(data: dict[str, Any], patient_id: uuid.UUID) -> dict[str, Any]:
    """Invite a patient without a login: a one-time code (to type in the app) and a link
    token, valid `expires_in_days` (default 7); `link` is the patient app's address carrying
    the token and `qr_svg` a QR code of it. Earlier unused invitations stop working.
    The secrets are shown only in this response."""
    user = current_user()
    patient = access.get_patient_or_404(user, patient_id)
    invitation, code, token = enrolment_service.create_invitation(
        patient, user, expires_in_days=data["expires_in_days"], now=now()
    )
    audit_change("create", "invitation", invitation.id, patient_id=str(patient.id))
    return {
        "id": invitation.id,
        "patient_id": patient.id,
        "code": code,
        "link_token": token,
        "link": enrolment_service.invitation_link(token),
        "qr_svg": enrolment_service.invitation_qr_svg(token),
        "expires_at": invitation.expires_at,
    }


@blp.route("/auth/enrol", methods=["POST"])
@limiter.limit(ENROL_RATE_LIMIT)
@transactional
@blp.arguments(EnrolSchema)
@blp.alt_response(400, response="BAD_REQUEST")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
@blp.response(201, TokenPairSchema)
def enrol(data: dict[str, Any]) -> dict[str, Any]:
    """Redeem an invitation (`code` or `token`): creates the patient's login with this
    email and password, uses the invitation up, and signs in (returns a token pair)."""
    user, patient = enrolment_service.redeem_invitation(
        code=data.get("code"), token=data.get("token"), email=data["email"],
        password=data["password"], now=now(),
    )
    audit.record("patient.enrol", "patient", patient.id, actor=user, user_id=str(user.id))
    return issue_token_pair(user)
