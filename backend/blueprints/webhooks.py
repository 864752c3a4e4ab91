"""Webhook endpoints of the admin's clinic: register, list, rotate the secret, re-enable, deliveries.

Admins only; another clinic's endpoint answers 404. Every change is audited (never the secret).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for
from sqlalchemy import select

from backend import audit
from backend.auth import auth_required, current_user
from backend.blueprints.clinical_common import clinical_blueprint
from backend.extensions import db
from backend.http.idempotency import idempotent
from backend.models.webhooks import WebhookDelivery, WebhookEndpoint
from backend.services import webhooks as webhook_service
from backend.unit_of_work import transactional
from schemas.webhooks import (
    WebhookDeliverySchema,
    WebhookEndpointCreateSchema,
    WebhookEndpointListSchema,
    WebhookEndpointSchema,
    WebhookEndpointWithSecretSchema,
)

blp = clinical_blueprint("webhooks", "Signed webhooks (Standard Webhooks) of the admin's clinic.")

#: Deliveries listed per endpoint, newest first.
DELIVERY_PAGE = 100


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
    return {**{name: getattr(endpoint, name) for name in ("id", "url", "events", "status", "consecutive_failures",
                                                         "disabled_at", "created_at")}, "secret": secret}


@blp.route("/webhooks/endpoints", methods=["POST"])
@auth_required("admin")
@idempotent
@blp.arguments(WebhookEndpointCreateSchema)
@blp.response(201, WebhookEndpointWithSecretSchema)
def create_endpoint(data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Register an endpoint; the answer holds its secret (shown only here and on rotation)."""
    endpoint = webhook_service.create_endpoint(current_user(), data["url"], data["events"])
    audit.record("webhook_endpoint.create", "webhook_endpoint", endpoint.id, events=endpoint.events)
    return _with_secret(endpoint, endpoint.secret), 201, {"Location": url_for("webhooks.list_endpoints")}


@blp.route("/webhooks/endpoints", methods=["GET"])
@auth_required("admin")
@transactional
@blp.response(200, WebhookEndpointListSchema)
def list_endpoints() -> dict[str, Any]:
    """The clinic's endpoints with their status (disabled ones say so)."""
    items = db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.clinic_id == current_user().clinic_id)
                               .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id))
    return {"items": list(items)}


@blp.route("/webhooks/endpoints/<uuid:endpoint_id>/rotate-secret", methods=["POST"])
@auth_required("admin")
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, WebhookEndpointWithSecretSchema)
def rotate_secret(endpoint_id: uuid.UUID) -> dict[str, Any]:
    """A new secret; the previous one keeps signing for 24 hours (both signatures are sent)."""
    endpoint = webhook_service.endpoint_of_clinic_or_404(current_user(), endpoint_id)
    secret = webhook_service.rotate_secret(endpoint)
    audit.record("webhook_endpoint.rotate_secret", "webhook_endpoint", endpoint.id)
    return _with_secret(endpoint, secret)


@blp.route("/webhooks/endpoints/<uuid:endpoint_id>/enable", methods=["POST"])
@auth_required("admin")
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, WebhookEndpointSchema)
def enable_endpoint(endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """Re-enable an endpoint disabled after repeated failures (its target is checked again)."""
    endpoint = webhook_service.endpoint_of_clinic_or_404(current_user(), endpoint_id)
    webhook_service.enable_endpoint(endpoint)
    audit.record("webhook_endpoint.enable", "webhook_endpoint", endpoint.id)
    return endpoint


@blp.route("/webhooks/endpoints/<uuid:endpoint_id>/deliveries", methods=["GET"])
@auth_required("admin")
@transactional
@blp.alt_response(404, response="NOT_FOUND")
@blp.response(200, WebhookDeliverySchema(many=True))
def list_deliveries(endpoint_id: uuid.UUID) -> list[dict[str, Any]]:
    """The endpoint's newest deliveries with every attempt (status code or error, duration)."""
    endpoint = webhook_service.endpoint_of_clinic_or_404(current_user(), endpoint_id)
    deliveries = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
                                    .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                                    .limit(DELIVERY_PAGE))
    return [{**{name: getattr(d, name) for name in ("id", "event_type", "status", "payload", "created_at",
                                                   "delivered_at", "attempts")},
             "message_id": webhook_service.message_id(d)} for d in deliveries]
