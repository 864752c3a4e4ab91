"""Studies: participating clinics, researcher grants, participant pseudonyms (code, date offset), exports.

Revision ID: 0005_studies
Revises: 0004_photos
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_studies'
down_revision = '0004_photos'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('studies',
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('indication', sa.String(length=40), nullable=True),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('owner_clinic_id', sa.Uuid(), nullable=False),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("indication IS NULL OR indication IN ('photoaging', 'redness_rosacea', 'pigmentation_melasma', 'acne_scars', 'hair_loss', 'other')", name=op.f('ck_studies_indication_known')),
    sa.CheckConstraint('ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on', name=op.f('ck_studies_dates_ordered')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_studies_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['owner_clinic_id'], ['clinics.id'], name=op.f('fk_studies_owner_clinic_id_clinics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studies'))
    )
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_studies_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_studies_owner_clinic_id'), ['owner_clinic_id'], unique=False)

    op.create_table('study_clinics',
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('added_by_user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['added_by_user_id'], ['users.id'], name=op.f('fk_study_clinics_added_by_user_id_users')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_study_clinics_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_study_clinics_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('study_id', 'clinic_id', name=op.f('pk_study_clinics'))
    )
    op.create_table('study_exports',
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('requested_by_user_id', sa.Uuid(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('storage_key', sa.String(length=512), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name=op.f('ck_study_exports_status_known')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_study_exports_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['requested_by_user_id'], ['users.id'], name=op.f('fk_study_exports_requested_by_user_id_users')),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_study_exports_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_exports'))
    )
    with op.batch_alter_table('study_exports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_exports_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_study_exports_study_id'), ['study_id'], unique=False)

    op.create_table('study_grants',
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('researcher_user_id', sa.Uuid(), nullable=False),
    sa.Column('granted_by_user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['granted_by_user_id'], ['users.id'], name=op.f('fk_study_grants_granted_by_user_id_users')),
    sa.ForeignKeyConstraint(['researcher_user_id'], ['users.id'], name=op.f('fk_study_grants_researcher_user_id_users')),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_study_grants_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('study_id', 'researcher_user_id', name=op.f('pk_study_grants'))
    )
    op.create_table('study_participants',
    sa.Column('study_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('date_shift_days', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_study_participants_patient_id_patients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name=op.f('fk_study_participants_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_participants')),
    sa.UniqueConstraint('study_id', 'code', name=op.f('uq_study_participants_study_id_code')),
    sa.UniqueConstraint('study_id', 'patient_id', name=op.f('uq_study_participants_study_id_patient_id'))
    )
    with op.batch_alter_table('study_participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_participants_study_id'), ['study_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('study_participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_participants_study_id'))

    op.drop_table('study_participants')
    op.drop_table('study_grants')
    with op.batch_alter_table('study_exports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_exports_study_id'))
        batch_op.drop_index(batch_op.f('ix_study_exports_created_at'))

    op.drop_table('study_exports')
    op.drop_table('study_clinics')
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_studies_owner_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_studies_created_at'))

    op.drop_table('studies')

