"""Every ``flask --app backend <command>``, defined and registered here (thin: the work is elsewhere).

Schema: ``db-upgrade``, ``db-downgrade``, ``db-revision`` (:mod:`backend.migrations`); demo:
``init-db``, ``seed-demo`` (:mod:`backend.demo`); accounts: ``create-admin``; operations:
``prune``, ``check-integrity``, ``backup``, ``restore``, ``reanalyse``, ``reanalyse-follow-ups``
(:mod:`backend.ops`);
webhooks: ``webhook-milestones`` (:mod:`backend.services.webhooks`).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from backend import migrations
from backend.ops.integrity import DEFAULT_GRACE_S


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
    help="Also add the demo patient's analysed photo series and a repeat capture of each photo (the slow part "
         "of seeding).",
)


def _seed_if_empty(photo_series: bool) -> None:
    from backend.demo import seed
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
        from backend.demo.series import add_demo_repeat_pairs, add_demo_series

        add_demo_repeat_pairs(add_demo_series(dt.datetime.now(dt.timezone.utc).date()))
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
    from backend.ops.prune import prune

    click.echo(", ".join(f"{name}: {count} deleted" for name, count in prune().items()))


@click.command("webhook-milestones")
@with_appcontext
def webhook_milestones_command() -> None:
    """Queue milestone.due / milestone.overdue webhooks (run daily, e.g. from cron; each is sent once)."""
    from backend.extensions import db, now
    from backend.services.webhooks import emit_milestone_events

    queued = emit_milestone_events(now().date())
    db.session.commit()
    click.echo(f"{queued} milestone webhook deliveries queued")


@click.command("check-integrity")
@with_appcontext
@click.option("--grace", "grace_s", type=click.FloatRange(min=0), default=DEFAULT_GRACE_S, show_default=True,
              help="Seconds an unreferenced object may be in flight before it counts as orphaned.")
@click.option("--remove-orphans", is_flag=True,
              help="Delete the orphaned objects found (older than --grace), then check again.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_integrity_command(grace_s: float, remove_orphans: bool, as_json: bool) -> None:
    """Check database rows against the photo store, jobs and the audit chain; exit 1 on findings."""
    from backend.ops.integrity import check_integrity, remove_orphan_files

    report = check_integrity(grace_s=grace_s)
    removed = remove_orphan_files(report) if remove_orphans else []
    if removed:
        report = check_integrity(grace_s=grace_s)
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "removed_orphans": removed}, indent=2))
    else:
        for key in removed:
            click.echo(f"removed orphan\t{key}")
        click.echo(", ".join(f"{name}: {count}" for name, count in report.counts.items()) + " examined")
        for finding in report.findings:
            click.echo(f"{finding.kind}\t{finding.subject}\t{finding.detail}")
        click.echo("integrity ok" if report.ok else f"{len(report.findings)} finding(s)")
    if not report.ok:
        raise SystemExit(1)


@click.command("backup")
@with_appcontext
@click.option("--to", "target", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New (or empty) directory to write the backup into.")
def backup_command(target: Path) -> None:
    """Back up the database (one consistent snapshot) and the photo store into a directory."""
    from backend.ops.backup import write_backup

    manifest = write_backup(target)
    click.echo(f"backed up {sum(manifest['rows'].values())} rows in {len(manifest['rows'])} tables and "
               f"{len(manifest['objects'])} objects at schema {manifest['schema_revision']} to {target}")


@click.command("restore")
@with_appcontext
@click.option("--from", "source", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A directory written by `flask backup`.")
def restore_command(source: Path) -> None:
    """Restore a backup into this instance's empty database and photo store."""
    from backend.ops.backup import restore_backup

    counts = restore_backup(source)
    objects = counts.pop("objects")
    click.echo(f"restored {sum(counts.values())} rows and {objects} objects from {source}")


@click.command("reanalyse")
@with_appcontext
@click.option("--run-here/--enqueue-only", default=False, show_default=True,
              help="Run the analyses in this process instead of leaving them to the workers.")
def reanalyse_command(run_here: bool) -> None:
    """Recompute every photo whose results are not from the current algorithm version."""
    from backend.ops import reanalyse
    from imaging.version import ALGORITHM_VERSION

    job_ids, retried = reanalyse.enqueue_reanalysis()
    _report_queued(job_ids, retried, f"photo(s) queued for analysis with algorithm {ALGORITHM_VERSION}", run_here)


@click.command("reanalyse-follow-ups")
@with_appcontext
@click.option("--run-here/--enqueue-only", default=False, show_default=True,
              help="Run the analyses in this process instead of leaving them to the workers.")
def reanalyse_follow_ups_command(run_here: bool) -> None:
    """Recompute every follow-up whose results are registered to another baseline than the one that counts now."""
    from backend.ops import reanalyse

    job_ids, retried = reanalyse.enqueue_stale_follow_ups()
    _report_queued(job_ids, retried, "follow-up(s) queued for analysis against their current baseline", run_here)


def _report_queued(job_ids: list, retried: int, queued: str, run_here: bool) -> None:
    """Say what the analysis commands queued; with ``run_here``, run the jobs here and say how they ended."""
    from backend.ops import reanalyse

    click.echo(f"{len(job_ids)} {queued}" + (f" ({retried} failed analysis job(s) given fresh attempts)" if retried else ""))
    if run_here:
        counts = reanalyse.run_here(current_app._get_current_object(), job_ids)
        click.echo(", ".join(f"{count} {status}" for status, count in counts.items()) or "nothing to do")


#: Every command of ``flask --app backend``.
COMMANDS = (db_upgrade_command, db_downgrade_command, db_revision_command, seed_demo_command, init_db_command,
            create_admin_command, prune_command, check_integrity_command, backup_command, restore_command,
            reanalyse_command, reanalyse_follow_ups_command, webhook_milestones_command)


def register_cli(app: Flask) -> None:
    """Add every skintrack command to ``app.cli``."""
    for command in COMMANDS:
        app.cli.add_command(command)
