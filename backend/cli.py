"""``flask --app backend <command>``: database migrations, demo seed, admin creation."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from backend import migrations


def _database() -> tuple[str, dict]:
    return current_app.config["SQLALCHEMY_DATABASE_URI"], current_app.config["SQLALCHEMY_ENGINE_OPTIONS"]


@click.command("db-upgrade")
@with_appcontext
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade_command(revision: str) -> None:
    """Upgrade the database schema (creates it when empty)."""
    url, options = _database()
    migrations.upgrade(url, options, revision)
    click.echo(f"database at {migrations.current_revision(url, options)}")


@click.command("db-downgrade")
@with_appcontext
@click.option("--revision", default="-1", show_default=True,
              help="Target revision; `base` removes every table.")
def db_downgrade_command(revision: str) -> None:
    """Downgrade the database schema."""
    url, options = _database()
    migrations.downgrade(url, options, revision)
    click.echo(f"database at {migrations.current_revision(url, options)}")


@click.command("db-revision")
@with_appcontext
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


_PHOTO_SERIES_OPTION = click.option(
    "--photo-series/--no-photo-series", default=True, show_default=True,
    help="Also add the demo patient's analysed photo series (the slow part of seeding).",
)


def _seed_if_empty(photo_series: bool) -> None:
    from backend import seed
    from backend.extensions import db

    instance = Path(current_app.instance_path)
    if not seed.database_is_empty():
        click.echo("database already has data; not seeding the demo clinic")
        saved = instance / seed.CREDENTIALS_FILE_NAME
        if saved.exists():
            click.echo(f"demo sign-ins were saved in {saved}")
        return
    accounts = seed.seed_demo(dt.datetime.now(dt.timezone.utc).date())
    if photo_series:
        from backend.demo_series import add_demo_series  # issue 5: the demo patient's photo series
        add_demo_series(dt.datetime.now(dt.timezone.utc).date())
    saved = seed.write_credentials(instance, accounts)
    db.session.remove()
    click.echo(seed.format_credentials(accounts) + f"(also saved in {saved})")


@click.command("seed-demo")
@with_appcontext
@_PHOTO_SERIES_OPTION
def seed_demo_command(photo_series: bool) -> None:
    """Seed the demo clinic (not real patients) if the database is empty; print its sign-ins."""
    _seed_if_empty(photo_series)


@click.command("init-db")
@with_appcontext
@_PHOTO_SERIES_OPTION
def init_db_command(photo_series: bool) -> None:
    """Upgrade the schema; when SEED_DEMO is true and the database is empty, seed the demo clinic."""
    url, options = _database()
    migrations.upgrade(url, options)
    click.echo(f"database at {migrations.current_revision(url, options)}")
    if current_app.config["SEED_DEMO"]:
        _seed_if_empty(photo_series)


@click.command("create-admin")
@with_appcontext
@click.option("--email", required=True)
@click.option("--clinic-name", help="Create a new clinic with this name.")
@click.option("--clinic-id", type=click.UUID, help="Add the admin to this existing clinic.")
@click.password_option(help="Prompted (hidden, twice) when not given.")
def create_admin_command(email: str, clinic_name: str | None, clinic_id: uuid.UUID | None,
                         password: str) -> None:
    """Create a clinic admin (and, with --clinic-name, the clinic)."""
    from marshmallow import ValidationError
    from sqlalchemy import select

    from backend import audit
    from backend.auth.passwords import hash_password
    from backend.extensions import db
    from backend.models.accounts import Clinic, User, normalise_email
    from schemas.accounts import UserCreateSchema

    if (clinic_name is None) == (clinic_id is None):
        raise click.UsageError("give exactly one of --clinic-name and --clinic-id")
    try:
        UserCreateSchema().load({"email": email, "role": "admin", "password": password})
    except ValidationError as error:
        raise click.UsageError(str(error.messages)) from None
    if db.session.execute(select(User.id).where(User.email == normalise_email(email))).first():
        raise click.UsageError("an account with this email already exists")
    if clinic_id is not None:
        clinic = db.session.get(Clinic, clinic_id)
        if clinic is None:
            raise click.UsageError("no clinic with this id")
    else:
        clinic = Clinic(id=uuid.uuid4(), name=clinic_name)
        db.session.add(clinic)
    user = User(id=uuid.uuid4(), email=normalise_email(email), role="admin", clinic_id=clinic.id,
                password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", "user", user.id, actor=None, clinic_id=clinic.id, role="admin", via="cli")
    db.session.commit()
    click.echo(f"admin {user.email} created in clinic {clinic.id}")


@click.command("prune")
@with_appcontext
def prune_command() -> None:
    """Delete bookkeeping rows that no rule needs any more (run daily, e.g. from cron).

    Login attempts older than LOGIN_FAILURE_WINDOW no longer count; idempotency
    records older than IDEMPOTENCY_KEY_TTL are past their promised replay time;
    revoked sign-ins and sign-ins whose refresh tokens all expired are dead.
    """
    from backend.auth.ratelimit import prune_login_attempts
    from backend.auth.tokens import prune_dead_families
    from backend.extensions import db
    from backend.http.idempotency import prune_idempotency_records

    counts = {
        "login attempts": prune_login_attempts(),
        "idempotency records": prune_idempotency_records(),
        "refresh token families": prune_dead_families(),
    }
    db.session.commit()
    click.echo(", ".join(f"{name}: {count} deleted" for name, count in counts.items()))


def register_cli(app: Flask) -> None:
    """Add the skintrack commands to ``app.cli``."""
    for command in (db_upgrade_command, db_downgrade_command, db_revision_command, seed_demo_command,
                    init_db_command, create_admin_command, prune_command):
        app.cli.add_command(command)
    from backend.integrity import backup_commands, check_integrity_command  # issue 7
    for command in (check_integrity_command, *backup_commands()):
        app.cli.add_command(command)
