"""Cursor pagination: stable order with ties, limits, invalid cursors."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.http.pagination import paginate
from backend.models.accounts import Clinic, User
from schemas.common import encode_cursor

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def clinic_with_users(app, make_clinic):
    """A clinic with 25 users; created_at has ties (5 users per second)."""
    clinic = make_clinic()
    with app.app_context():
        for number in range(25):
            db.session.add(User(email=f"user{number:02d}@example.org", role="clinician",
                                clinic_id=clinic.id, created_at=T0 + dt.timedelta(seconds=number // 5)))
        db.session.commit()
    return clinic


def all_pages(app, clinic, limit, descending=False):
    pages, cursor = [], None
    with app.app_context():
        stmt = select(User).where(User.clinic_id == clinic.id)
        while True:
            items, cursor = paginate(stmt, (User.created_at, User.id), {"limit": limit, "cursor": cursor},
                                     descending=descending)
            pages.append([user.email for user in items])
            if cursor is None:
                return pages


def expected_order(app, clinic, descending=False):
    with app.app_context():
        users = db.session.scalars(select(User).where(User.clinic_id == clinic.id)).all()
        ordered = sorted(users, key=lambda u: (u.created_at, u.id), reverse=descending)
        return [u.email for u in ordered]


@pytest.mark.parametrize("descending", [False, True])
def test_pages_cover_every_item_once_in_stable_order(app, clinic_with_users, descending):
    pages = all_pages(app, clinic_with_users, limit=7, descending=descending)
    assert [len(page) for page in pages] == [7, 7, 7, 4]
    flat = [email for page in pages for email in page]
    assert flat == expected_order(app, clinic_with_users, descending)


def test_exact_multiple_of_limit_has_no_empty_last_page(app, clinic_with_users):
    pages = all_pages(app, clinic_with_users, limit=5)
    assert [len(page) for page in pages] == [5, 5, 5, 5, 5]


def test_items_added_before_the_cursor_do_not_shift_pages(app, clinic_with_users):
    with app.app_context():
        stmt = select(User).where(User.clinic_id == clinic_with_users.id)
        first, cursor = paginate(stmt, (User.created_at, User.id), {"limit": 10, "cursor": None})
        first_emails = [u.email for u in first]
        db.session.add(User(email="early@example.org", role="clinician", clinic_id=clinic_with_users.id,
                            created_at=T0 - dt.timedelta(days=1)))
        db.session.commit()
        second, _ = paginate(stmt, (User.created_at, User.id), {"limit": 10, "cursor": cursor})
    assert not {u.email for u in second} & set(first_emails)
    assert [u.email for u in second] == expected_order(app, clinic_with_users)[11:21]


def test_list_endpoint_envelope_and_limit(client, app, make_user, auth_headers):
    admin = make_user("admin")
    clinic = db_clinic(app, admin)
    for _ in range(3):
        make_user("clinician", clinic)
    headers = auth_headers(admin)
    first = client.get("/api/v1/admin/users?limit=2", headers=headers).get_json()
    assert set(first) == {"items", "next_cursor"} and len(first["items"]) == 2
    second = client.get(f"/api/v1/admin/users?limit=2&cursor={first['next_cursor']}", headers=headers).get_json()
    assert len(second["items"]) == 2 and second["next_cursor"] is None
    default = client.get("/api/v1/admin/users", headers=headers).get_json()
    assert len(default["items"]) == 4


def db_clinic(app, user):
    with app.app_context():
        clinic = db.session.get(Clinic, user.clinic_id)
        db.session.expunge(clinic)
        return clinic


#: A fixed id, so the parameters (and test ids) are the same in every collecting process.
ANY_ID = uuid.UUID("a0994e66-d6d1-4637-85f8-748c0f38a0a6")


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "cursor=%%%", "cursor=bm90LWpzb24",
                                   f"cursor={encode_cursor(['2026-01-01T00:00:00+00:00'])}",
                                   f"cursor={encode_cursor(['yesterday', str(ANY_ID)])}",
                                   f"cursor={encode_cursor(['2026-01-01T00:00:00', str(ANY_ID)])}"])
def test_bad_limit_or_cursor_is_422(client, make_user, auth_headers, query):
    response = client.get(f"/api/v1/admin/users?{query}", headers=auth_headers(make_user("admin")))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert set(response.get_json()["errors"]) & {"limit", "cursor"}


def test_limit_100_is_accepted(client, make_user, auth_headers):
    response = client.get("/api/v1/admin/users?limit=100", headers=auth_headers(make_user("admin")))
    assert response.status_code == 200
