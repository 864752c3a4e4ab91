"""Photos: photos, two-phase uploads, analyses per algorithm version, measurements per region, overlays.

Revision ID: 0004_photos
Revises: 0003_jobs
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_photos'
down_revision = '0003_jobs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('photos',
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('course_id', sa.Uuid(), nullable=False),
    sa.Column('milestone_id', sa.Uuid(), nullable=True),
    sa.Column('out_of_window', sa.Boolean(), nullable=False),
    sa.Column('view', sa.String(length=8), nullable=False),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('capture_date', sa.Date(), nullable=False),
    sa.Column('capture_time_source', sa.String(length=8), nullable=False),
    sa.Column('make_up', sa.Boolean(), nullable=True),
    sa.Column('device', sa.String(length=64), nullable=True),
    sa.Column('uploaded_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('image_format', sa.String(length=8), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=512), nullable=True),
    sa.Column('quality', sa.JSON(), nullable=False),
    sa.Column('usable', sa.Boolean(), nullable=False),
    sa.Column('superseded_by_id', sa.Uuid(), nullable=True),
    sa.Column('analysis_job_id', sa.Uuid(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deletion_reason', sa.String(length=20), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("capture_time_source IN ('app', 'exif', 'upload')", name=op.f('ck_photos_capture_time_source_known')),
    sa.CheckConstraint("deletion_reason IS NULL OR deletion_reason IN ('deleted', 'consent_withdrawn')", name=op.f('ck_photos_deletion_reason_known')),
    sa.CheckConstraint("view IN ('front', 'left', 'right')", name=op.f('ck_photos_view_known')),
    sa.CheckConstraint('size_bytes > 0 AND width > 0 AND height > 0', name=op.f('ck_photos_dimensions_positive')),
    sa.ForeignKeyConstraint(['analysis_job_id'], ['jobs.id'], name=op.f('fk_photos_analysis_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['course_id'], ['treatment_courses.id'], name=op.f('fk_photos_course_id_treatment_courses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['milestone_id'], ['milestones.id'], name=op.f('fk_photos_milestone_id_milestones'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_photos_patient_id_patients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['superseded_by_id'], ['photos.id'], name=op.f('fk_photos_superseded_by_id_photos'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['uploaded_by_user_id'], ['users.id'], name=op.f('fk_photos_uploaded_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photos'))
    )
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_photos_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_photos_patient_created', ['patient_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_photos_slot', ['course_id', 'milestone_id', 'view'], unique=False)

    op.create_table('photo_analyses',
    sa.Column('photo_id', sa.Uuid(), nullable=False),
    sa.Column('algorithm_version', sa.String(length=32), nullable=False),
    sa.Column('baseline_photo_id', sa.Uuid(), nullable=True),
    sa.Column('quality', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('face_found', sa.Boolean(), nullable=False),
    sa.Column('baseline_reference_key', sa.String(length=512), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['baseline_photo_id'], ['photos.id'], name=op.f('fk_photo_analyses_baseline_photo_id_photos'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_photo_analyses_photo_id_photos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photo_analyses')),
    sa.UniqueConstraint('photo_id', 'algorithm_version', name=op.f('uq_photo_analyses_photo_id_algorithm_version'))
    )
    with op.batch_alter_table('photo_analyses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_photo_analyses_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_photo_analyses_photo_id'), ['photo_id'], unique=False)

    op.create_table('photo_uploads',
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('course_id', sa.Uuid(), nullable=False),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=False),
    sa.Column('capture', sa.JSON(), nullable=False),
    sa.Column('declared_size', sa.Integer(), nullable=False),
    sa.Column('declared_content_type', sa.String(length=32), nullable=False),
    sa.Column('staging_key', sa.String(length=512), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('photo_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'completed')", name=op.f('ck_photo_uploads_status_known')),
    sa.CheckConstraint('declared_size > 0', name=op.f('ck_photo_uploads_declared_size_positive')),
    sa.ForeignKeyConstraint(['course_id'], ['treatment_courses.id'], name=op.f('fk_photo_uploads_course_id_treatment_courses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_photo_uploads_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_photo_uploads_patient_id_patients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_photo_uploads_photo_id_photos'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photo_uploads'))
    )
    with op.batch_alter_table('photo_uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_photo_uploads_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_photo_uploads_patient_id'), ['patient_id'], unique=False)

    op.create_table('photo_measurements',
    sa.Column('analysis_id', sa.Uuid(), nullable=False),
    sa.Column('region', sa.String(length=40), nullable=False),
    sa.Column('measure', sa.String(length=120), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['analysis_id'], ['photo_analyses.id'], name=op.f('fk_photo_measurements_analysis_id_photo_analyses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photo_measurements')),
    sa.UniqueConstraint('analysis_id', 'region', 'measure', name=op.f('uq_photo_measurements_analysis_id_region_measure'))
    )
    op.create_table('photo_overlays',
    sa.Column('analysis_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('storage_key', sa.String(length=512), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['analysis_id'], ['photo_analyses.id'], name=op.f('fk_photo_overlays_analysis_id_photo_analyses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photo_overlays')),
    sa.UniqueConstraint('analysis_id', 'name', name=op.f('uq_photo_overlays_analysis_id_name'))
    )


def downgrade() -> None:
    op.drop_table('photo_overlays')
    op.drop_table('photo_measurements')
    with op.batch_alter_table('photo_uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_photo_uploads_patient_id'))
        batch_op.drop_index(batch_op.f('ix_photo_uploads_created_at'))

    op.drop_table('photo_uploads')
    with op.batch_alter_table('photo_analyses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_photo_analyses_photo_id'))
        batch_op.drop_index(batch_op.f('ix_photo_analyses_created_at'))

    op.drop_table('photo_analyses')
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_index('ix_photos_slot')
        batch_op.drop_index('ix_photos_patient_created')
        batch_op.drop_index(batch_op.f('ix_photos_created_at'))

    op.drop_table('photos')
