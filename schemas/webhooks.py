"""Webhook API schemas: endpoints (the secret only on creation and rotation), deliveries, attempts."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

#: Event types an endpoint may subscribe to (the one list; the service reads it).
WEBHOOK_EVENT_TYPES = ("photo.analysed", "photo.refused", "milestone.due", "milestone.overdue",
                       "adverse_event.reported", "export.ready")


class WebhookEndpointCreateSchema(ma.Schema):
    url = fields.String(required=True, validate=validate.Length(1, 2000),
                        metadata={"description": "https URL; private and loopback hosts are refused."})
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENT_TYPES)), required=True,
                         validate=validate.Length(min=1))


class WebhookEndpointSchema(ma.Schema):
    id = fields.UUID()
    url = fields.String()
    events = fields.List(fields.String())
    status = fields.String(metadata={"description": "active, or disabled after repeated failures."})
    consecutive_failures = fields.Integer()
    disabled_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class WebhookEndpointWithSecretSchema(WebhookEndpointSchema):
    secret = fields.String(metadata={"description": "whsec_...: shown only now; verifies webhook-signature."})


class WebhookEndpointListSchema(ma.Schema):
    items = fields.List(fields.Nested(WebhookEndpointSchema))


class WebhookAttemptSchema(ma.Schema):
    number = fields.Integer()
    started_at = fields.DateTime()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class WebhookDeliverySchema(ma.Schema):
    id = fields.UUID()
    message_id = fields.String(metadata={"description": "The webhook-id header."})
    event_type = fields.String()
    status = fields.String(metadata={"description": "pending, delivered or failed."})
    payload = fields.Dict(keys=fields.String())
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)
    attempts = fields.List(fields.Nested(WebhookAttemptSchema))
