"""Shared fixtures for the imaging tests (capture side; measures have measures_fixtures.py).

Everything is built from ``skimage.data.astronaut()`` through :mod:`imaging.testing.synthetic`, so
no file is downloaded. Session-scoped: building a 12 MP photo takes ~0.5 s. Helpers that
detect faces and build truth geometries are in capture_helpers.py.
"""

from __future__ import annotations

import pytest

from imaging.testing import synthetic


@pytest.fixture(scope="session")
def phone_photo() -> synthetic.SyntheticPhoto:
    """A 3024x4032 portrait of the astronaut on grey, with truth eyes/mouth/box."""
    return synthetic.phone_photo()


@pytest.fixture(scope="session")
def phone_jpeg(phone_photo) -> bytes:
    """``phone_photo`` as a phone JPEG: stored sideways + EXIF orientation 6, GPS, serial, comments."""
    return synthetic.to_jpeg(phone_photo.rgb)


@pytest.fixture(scope="session")
def medium_photo() -> synthetic.SyntheticPhoto:
    """A 756x1008 portrait (1/4 of a phone photo): fast for geometry tests."""
    return synthetic.phone_photo((756, 1008))
