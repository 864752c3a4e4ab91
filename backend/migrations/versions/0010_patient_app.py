"""Patient app: personal calendar feeds; camera settings stored with a photo.

Revision ID: 0010_patient_app
Revises: 0009_clinic_workspace
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_patient_app'
down_revision = '0009_clinic_workspace'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_feeds',
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_fetched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_calendar_feeds_patient_id_patients'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_feeds')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_calendar_feeds_token_hash'))
    )
    with op.batch_alter_table('calendar_feeds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_feeds_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_calendar_feeds_patient_id'), ['patient_id'], unique=False)
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capture_conditions', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_column('capture_conditions')
    with op.batch_alter_table('calendar_feeds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_feeds_patient_id'))
        batch_op.drop_index(batch_op.f('ix_calendar_feeds_created_at'))
    op.drop_table('calendar_feeds')
