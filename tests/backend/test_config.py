"""Configuration from the environment; README mirrors the settings table."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from backend import create_app
from backend.config import SETTINGS, load_config, load_or_create_secret_key, parse_bool

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_live_in_the_instance_folder(tmp_path):
    config = load_config(tmp_path, environ={})
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'skintrack.sqlite3'}"
    assert config["STORAGE_URL"] == f"file://{tmp_path / 'storage'}"
    assert config["ACCESS_TOKEN_TTL"] == 900 and config["SEED_DEMO"] is False
    assert config["SECRET_KEY"] is None  # filled from the instance key file by create_app


@pytest.mark.parametrize("given, expected", [
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
])
def test_database_url_uses_psycopg3(tmp_path, given, expected):
    assert load_config(tmp_path, environ={"DATABASE_URL": given})["DATABASE_URL"] == expected


@pytest.mark.parametrize("name, value", [("ACCESS_TOKEN_TTL", "soon"), ("ACCESS_TOKEN_TTL", "0"),
                                         ("SEED_DEMO", "maybe"), ("JOB_BACKEND", "cron")])
def test_bad_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        load_config(tmp_path, environ={name: value})


@pytest.mark.parametrize("text, value", [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False), ("", False)])
def test_parse_bool(text, value):
    assert parse_bool(text) is value


def test_environment_is_read_by_create_app(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    monkeypatch.setenv("ACCESS_TOKEN_TTL", "120")
    monkeypatch.setenv("STORAGE_URL", f"file://{tmp_path / 'storage'}")
    monkeypatch.setenv("JOB_BACKEND", "inline")
    monkeypatch.setenv("SECRET_KEY", "from-the-environment-" + "x" * 20)
    app = create_app()
    assert app.config["ACCESS_TOKEN_TTL"] == 120
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("env.sqlite3")
    assert app.config["SECRET_KEY"].startswith("from-the-environment-")
    assert app.config["SESSION_COOKIE_SECURE"] is True  # dashboard cookie: HTTPS only by default
    monkeypatch.setenv("DASHBOARD_COOKIE_SECURE", "false")
    assert create_app().config["SESSION_COOKIE_SECURE"] is False


def test_secret_key_is_generated_once_and_private(tmp_path):
    first = load_or_create_secret_key(tmp_path / "instance")
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert load_or_create_secret_key(tmp_path / "instance") == first
    assert stat.S_IMODE((tmp_path / "instance" / "secret_key").stat().st_mode) == 0o600


def test_readme_configuration_table_lists_every_setting():
    text = README.read_text()
    table_names = re.findall(r"^\| `([A-Z0-9_]+)` \|", text, flags=re.MULTILINE)
    assert table_names == [setting.name for setting in SETTINGS]


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(app, database_backend):
    if database_backend != "sqlite":
        pytest.skip("SQLite connection settings")
    from backend.extensions import SQLITE_BUSY_TIMEOUT_MS, db

    with app.app_context():
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
