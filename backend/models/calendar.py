"""A patient's personal calendar feed (ICS over ``webcal://``).

Calendar programs fetch a feed without signing in, so the feed URL itself carries the
credential: a random token. Only its keyed hash is stored (as for invitation secrets), the
patient can replace it (the old URL stops working) or revoke it, and the feed says nothing
but neutral milestone names and dates.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin


class CalendarFeed(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One feed token of a patient; at most one is live (``revoked_at`` is None)."""

    __tablename__ = "calendar_feeds"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: Last time a calendar program fetched the feed (shown to the patient).
    last_fetched_at: Mapped[dt.datetime | None] = mapped_column(default=None)
