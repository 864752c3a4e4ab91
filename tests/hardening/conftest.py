"""The hardening tests count every storage key, so each starts from an empty photo store.

The session app's storage outlives a test (only tables are emptied between tests).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from backend.storage import current_storage


@pytest.fixture(autouse=True)
def empty_photo_store(app: Flask) -> Iterator[None]:
    """Remove every object left by earlier tests of the session."""
    with app.app_context():
        storage = current_storage()
        for key in list(storage.iter_keys("")):
            storage.delete(key)
    yield
