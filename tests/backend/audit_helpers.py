"""Helpers of the audit tests: switching the audit table's append-only triggers off and on."""

from __future__ import annotations

from sqlalchemy import text


def without_append_only_guard(conn, dialect: str):
    """Simulate an attacker with DDL rights: switch the table's triggers off."""
    if dialect == "postgresql":
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
    else:
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")


def restore_append_only_guard(conn, dialect: str):
    """Switch the triggers back on."""
    if dialect == "postgresql":
        conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    else:
        for event in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER audit_events_no_{event.lower()} BEFORE {event} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END")
