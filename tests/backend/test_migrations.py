"""Migrations: empty -> head -> base on SQLite and PostgreSQL; models match migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from backend import models  # noqa: F401 - every table on Base.metadata
from backend.migrations import alembic_config, current_revision, downgrade, upgrade
from backend.models.base import Base


def table_names(url, options) -> set[str]:
    engine = create_engine(url, poolclass=NullPool, **options)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_revisions_form_one_chain_starting_at_0001():
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].revision == "0001_accounts"
    assert revisions[-1].down_revision is None
    assert all(r.revision[:4].isdigit() for r in revisions)


def test_upgrade_to_head_and_downgrade_to_base(empty_database):
    url, options = empty_database
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    upgrade(url, options)
    assert current_revision(url, options) == head
    assert {t.name for t in Base.metadata.sorted_tables} <= table_names(url, options)
    downgrade(url, options, "base")
    assert current_revision(url, options) is None
    assert table_names(url, options) <= {"alembic_version"}
    upgrade(url, options)  # and up again: downgrades left nothing behind
    assert current_revision(url, options) == head


def test_each_step_downgrades_and_upgrades(empty_database):
    url, options = empty_database
    script = ScriptDirectory.from_config(alembic_config())
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    for revision in chain:
        upgrade(url, options, revision)
        downgrade(url, options, "-1")
        upgrade(url, options, revision)
        assert current_revision(url, options) == revision


def test_models_match_migrated_schema(empty_database):
    url, options = empty_database
    upgrade(url, options)
    engine = create_engine(url, poolclass=NullPool, **options)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
