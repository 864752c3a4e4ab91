"""Helpers of the dashboard tests: the sign-in form and its CSRF token."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests import factories


def csrf_of(html: str) -> str:
    """The CSRF token of a dashboard form."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def form_csrf(client: FlaskClient) -> str:
    """The CSRF token of the client's session, from the sign-in form."""
    return csrf_of(client.get("/dashboard/login").get_data(as_text=True))


def sign_in(client: FlaskClient, email: str, password: str = factories.DEFAULT_PASSWORD) -> TestResponse:
    """Sign in through the dashboard's form (302 on success)."""
    return client.post("/dashboard/login", data={"csrf_token": form_csrf(client), "email": email,
                                                 "password": password})
