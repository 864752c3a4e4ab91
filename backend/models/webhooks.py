"""Webhook endpoints registered by a clinic's admin, their deliveries and each delivery attempt.

A delivery is one event for one endpoint; its id is the Standard Webhooks message id
(``webhook-id``), the same on every retry. ``event_key`` (event type + subject ids) is unique per
endpoint, so an event is delivered once however often it is noticed (e.g. a milestone scan).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin, utcnow
from backend.models.clinical import one_of

ENDPOINT_STATUSES = ("active", "disabled")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookEndpoint(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An HTTPS URL a clinic's admin registered for some event types."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (CheckConstraint(one_of("status", ENDPOINT_STATUSES), name="status_known"),)

    clinic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinics.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    #: ``whsec_`` + base64 key; signs every delivery (kept: HMAC needs the key itself).
    secret: Mapped[str] = mapped_column(String(100))
    #: The secret before the last rotation, also signing until ``previous_secret_expires_at``.
    previous_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(10), default="active")
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))


class WebhookDelivery(UUIDPrimaryKeyMixin, Base):
    """One event for one endpoint (payload: ids and the event type only)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_key"),
                      CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status_known"))

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(40))
    event_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    attempts: Mapped[list[WebhookAttempt]] = relationship(cascade="all, delete-orphan",
                                                          order_by="WebhookAttempt.number")


class WebhookAttempt(UUIDPrimaryKeyMixin, Base):
    """One try of a delivery: when, the HTTP status or the error class, how long it took."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(200), default=None)
    duration_ms: Mapped[int] = mapped_column(default=0)
