"""Schemas of the endpoints made for the patient app (preview check, calendar feed)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class PreviewHintSchema(ma.Schema):
    """One direction for the patient while framing."""

    code = fields.String(metadata={"description": "Stable code, e.g. `move_closer`, `turn_left`, `too_dark`."})
    message = fields.String()


class PreviewCheckSchema(ma.Schema):
    """What the preview found in one frame (nothing is stored)."""

    face_box = fields.List(fields.Float(), allow_none=True,
                           metadata={"description": "[x, y, width, height] as fractions of the frame."})
    n_faces = fields.Integer()
    yaw_deg = fields.Float(allow_none=True)
    pitch_deg = fields.Float(allow_none=True)
    roll_deg = fields.Float(allow_none=True)
    skin_lightness = fields.Float(allow_none=True, metadata={"description": "Median CIELAB L* of the face centre."})
    left_right_light = fields.Float(allow_none=True,
                                    metadata={"description": "Darker/brighter half of the face (linear light)."})
    hints = fields.List(fields.Nested(PreviewHintSchema), metadata={"description": "Most important first."})
    ready = fields.Boolean(metadata={"description": "No hints: take the photo."})


class CalendarFeedSchema(ma.Schema):
    """The patient's calendar feed; the addresses only in the answer that creates them."""

    active = fields.Boolean()
    created_at = fields.DateTime(allow_none=True)
    last_fetched_at = fields.DateTime(allow_none=True)
    webcal_url = fields.String(metadata={"description": "`webcal://` address to subscribe to (shown once)."})
    url = fields.String(metadata={"description": "The same feed over https (shown once)."})
