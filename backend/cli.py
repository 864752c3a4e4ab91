"""``flask --app backend <command>``: database migrations, demo seed, admin creation."""

from __future__ import annotations

import click
from flask import Flask, current_app

from backend import migrations


def _database() -> tuple[str, dict]:
    return current_app.config["SQLALCHEMY_DATABASE_URI"], current_app.config["SQLALCHEMY_ENGINE_OPTIONS"]


@click.command("db-upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade_command(revision: str) -> None:
    """Upgrade the database schema (creates it when empty)."""
    url, options = _database()
    migrations.upgrade(url, options, revision)
    click.echo(f"database at {migrations.current_revision(url, options)}")


@click.command("db-downgrade")
@click.option("--revision", default="-1", show_default=True,
              help="Target revision; `base` removes every table.")
def db_downgrade_command(revision: str) -> None:
    """Downgrade the database schema."""
    url, options = _database()
    migrations.downgrade(url, options, revision)
    click.echo(f"database at {migrations.current_revision(url, options)}")


@click.command("db-revision")
@click.option("-m", "--message", required=True, help="Short description.")
@click.option("--rev-id", required=True, help="Fixed id, e.g. 0003_photos.")
@click.option("--autogenerate/--empty", default=True, show_default=True)
def db_revision_command(message: str, rev_id: str, autogenerate: bool) -> None:
    """Write a new migration script (compare models with an up-to-date database)."""
    from alembic import command

    url, options = _database()
    config = migrations.alembic_config()
    with migrations.migration_connection(url, options) as conn:
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=autogenerate, rev_id=rev_id)


def register_cli(app: Flask) -> None:
    """Add the skintrack commands to ``app.cli``."""
    for command in (db_upgrade_command, db_downgrade_command, db_revision_command):
        app.cli.add_command(command)
