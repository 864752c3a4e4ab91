"""Repeat captures: ``photos.repeat_of_id`` and the repeatability results of the clinics' pairs.

Revision ID: 0007_repeat_captures
Revises: 0006_region_patch_consent
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_repeat_captures'
down_revision = '0006_region_patch_consent'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('repeat_of_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_photos_repeat_of_id_photos'), 'photos', ['repeat_of_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_photos_repeat_of_id'), ['repeat_of_id'], unique=False)

    op.create_table('repeatability_results',
    sa.Column('scope', sa.String(length=12), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=True),
    sa.Column('fitzpatrick_group', sa.String(length=8), nullable=True),
    sa.Column('algorithm_version', sa.String(length=32), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('measure', sa.String(length=120), nullable=False),
    sa.Column('region', sa.String(length=40), nullable=False),
    sa.Column('n_pairs', sa.Integer(), nullable=False),
    sa.Column('n_clinics', sa.Integer(), nullable=False),
    sa.Column('within_subject_sd', sa.Float(), nullable=True),
    sa.Column('icc', sa.Float(), nullable=True),
    sa.Column('icc_ci_low', sa.Float(), nullable=True),
    sa.Column('icc_ci_high', sa.Float(), nullable=True),
    sa.Column('sem', sa.Float(), nullable=True),
    sa.Column('mdc95', sa.Float(), nullable=True),
    sa.Column('bias', sa.Float(), nullable=True),
    sa.Column('loa_low', sa.Float(), nullable=True),
    sa.Column('loa_high', sa.Float(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("scope IN ('clinic', 'all_clinics')", name=op.f('ck_repeatability_results_scope_known')),
    sa.CheckConstraint("(scope = 'clinic') = (clinic_id IS NOT NULL)",
                       name=op.f('ck_repeatability_results_clinic_iff_clinic_scope')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_repeatability_results_clinic_id_clinics'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repeatability_results'))
    )
    with op.batch_alter_table('repeatability_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repeatability_results_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_repeatability_results_lookup', ['algorithm_version', 'scope', 'clinic_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('repeatability_results', schema=None) as batch_op:
        batch_op.drop_index('ix_repeatability_results_lookup')
        batch_op.drop_index(batch_op.f('ix_repeatability_results_created_at'))
    op.drop_table('repeatability_results')
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_photos_repeat_of_id'))
        batch_op.drop_constraint(batch_op.f('fk_photos_repeat_of_id_photos'), type_='foreignkey')
        batch_op.drop_column('repeat_of_id')
