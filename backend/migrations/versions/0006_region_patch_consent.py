"""Consent scope ``research_region_patches``: cheek/forehead crops in research exports.

Revision ID: 0006_region_patch_consent
Revises: 0005_studies
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = '0006_region_patch_consent'
down_revision = '0005_studies'
branch_labels = None
depends_on = None

CONSTRAINT = 'ck_consent_events_scope_known'
OLD_SCOPES = ('clinical_photo', 'research', 'marketing')
NEW_SCOPES = OLD_SCOPES + ('research_region_patches',)


def _scope_check(scopes: tuple[str, ...]) -> str:
    return 'scope IN (' + ', '.join(f"'{s}'" for s in scopes) + ')'


def _replace_check(scopes: tuple[str, ...]) -> None:
    # Batch mode: SQLite cannot alter a CHECK constraint, so the table is recreated there;
    # PostgreSQL gets a plain DROP/ADD CONSTRAINT.
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CONSTRAINT), type_='check')
        batch_op.create_check_constraint(op.f(CONSTRAINT), _scope_check(scopes))


def upgrade() -> None:
    _replace_check(NEW_SCOPES)


def downgrade() -> None:
    # Events of the new scope would violate the old constraint: they go with the scope.
    op.execute("DELETE FROM consent_events WHERE scope = 'research_region_patches'")
    _replace_check(OLD_SCOPES)
