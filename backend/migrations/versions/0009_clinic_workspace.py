"""Treatment sessions record the product applied: manufacturer, lot, expiry, volume, particles.

Revision ID: 0009_clinic_workspace
Revises: 0008_webhooks
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_clinic_workspace'
down_revision = '0008_webhooks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('treatment_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('product_manufacturer', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('product_lot', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('product_expiry', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('product_volume_ml', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('product_particles_per_vial', sa.Double(), nullable=True))
        batch_op.create_index(batch_op.f('ix_treatment_sessions_product_lot'), ['product_lot'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('treatment_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_treatment_sessions_product_lot'))
        batch_op.drop_column('product_particles_per_vial')
        batch_op.drop_column('product_volume_ml')
        batch_op.drop_column('product_expiry')
        batch_op.drop_column('product_lot')
        batch_op.drop_column('product_manufacturer')
