"""Clinical records: patients, consent events, treatment courses and sessions, milestones,
assessments, adverse events, enrolment invitations.

Revision ID: 0002_clinical
Revises: 0001_accounts
Create Date: 2026-11-21

Vocabulary CHECK constraints are frozen here as literals: changing a vocabulary in
``schemas.clinical`` needs a new migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_clinical'
down_revision = '0001_accounts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('patients',
    sa.Column('clinic_id', sa.Uuid(), nullable=False),
    sa.Column('study_id', sa.String(length=16), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=20), nullable=False),
    sa.Column('fitzpatrick_type', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("sex IN ('female', 'male', 'intersex', 'unknown')", name=op.f('ck_patients_sex_known')),
    sa.CheckConstraint('fitzpatrick_type BETWEEN 1 AND 6', name=op.f('ck_patients_fitzpatrick_range')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_patients_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_patients_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('study_id', name=op.f('uq_patients_study_id')),
    sa.UniqueConstraint('user_id', name=op.f('uq_patients_user_id'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_created_at'), ['created_at'], unique=False)

    op.create_table('consent_events',
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('scope', sa.String(length=30), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("action IN ('grant', 'withdraw')", name=op.f('ck_consent_events_action_known')),
    sa.CheckConstraint("scope IN ('clinical_photo', 'research', 'marketing')", name=op.f('ck_consent_events_scope_known')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_consent_events_patient_id_patients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_user_id'], ['users.id'], name=op.f('fk_consent_events_recorded_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_events')),
    sa.UniqueConstraint('patient_id', 'scope', 'seq', name=op.f('uq_consent_events_patient_id_scope_seq'))
    )
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_events_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_events_patient_id'), ['patient_id'], unique=False)

    op.create_table('invitations',
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('used_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_invitations_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_invitations_patient_id_patients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['used_by_user_id'], ['users.id'], name=op.f('fk_invitations_used_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_invitations_code_hash')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitations_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitations_patient_id'), ['patient_id'], unique=False)

    op.create_table('treatment_courses',
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('indication', sa.String(length=40), nullable=False),
    sa.Column('product_name', sa.String(length=200), nullable=False),
    sa.Column('exosome_source', sa.String(length=40), nullable=False),
    sa.Column('concentration_value', sa.Double(), nullable=True),
    sa.Column('concentration_unit', sa.String(length=30), nullable=True),
    sa.Column('delivery', sa.String(length=40), nullable=False),
    sa.Column('treated_regions', sa.JSON(), nullable=False),
    sa.Column('split_face_treated_side', sa.String(length=5), nullable=True),
    sa.Column('baseline_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("delivery IN ('topical_after_microneedling', 'rf_microneedling', 'fractional_laser', 'peel', 'injection', 'other')", name=op.f('ck_treatment_courses_delivery_known')),
    sa.CheckConstraint("exosome_source IN ('msc_umbilical_cord', 'adipose', 'bone_marrow', 'platelet', 'plant', 'other')", name=op.f('ck_treatment_courses_source_known')),
    sa.CheckConstraint("indication IN ('photoaging', 'redness_rosacea', 'pigmentation_melasma', 'acne_scars', 'hair_loss', 'other')", name=op.f('ck_treatment_courses_indication_known')),
    sa.CheckConstraint("split_face_treated_side IS NULL OR split_face_treated_side IN ('left', 'right')", name=op.f('ck_treatment_courses_split_side_known')),
    sa.CheckConstraint("status IN ('planned', 'active', 'completed', 'discontinued')", name=op.f('ck_treatment_courses_status_known')),
    sa.CheckConstraint('(concentration_value IS NULL) = (concentration_unit IS NULL)', name=op.f('ck_treatment_courses_concentration_value_with_unit')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_treatment_courses_patient_id_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treatment_courses'))
    )
    with op.batch_alter_table('treatment_courses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_treatment_courses_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_treatment_courses_patient_id'), ['patient_id'], unique=False)

    op.create_table('milestones',
    sa.Column('course_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('day_offset', sa.Integer(), nullable=False),
    sa.Column('window_before_days', sa.Integer(), nullable=False),
    sa.Column('window_after_days', sa.Integer(), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_via', sa.String(length=20), nullable=True),
    sa.Column('completed_source_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("completed_via IS NULL OR completed_via IN ('assessment', 'photo', 'visit')", name=op.f('ck_milestones_completed_via_known')),
    sa.CheckConstraint('day_offset >= 0', name=op.f('ck_milestones_offset_not_negative')),
    sa.CheckConstraint('window_before_days >= 0 AND window_after_days >= 0', name=op.f('ck_milestones_window_not_negative')),
    sa.ForeignKeyConstraint(['course_id'], ['treatment_courses.id'], name=op.f('fk_milestones_course_id_treatment_courses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_milestones')),
    sa.UniqueConstraint('course_id', 'name', name=op.f('uq_milestones_course_id_name'))
    )
    with op.batch_alter_table('milestones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_milestones_course_id'), ['course_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_milestones_created_at'), ['created_at'], unique=False)

    op.create_table('treatment_sessions',
    sa.Column('course_id', sa.Uuid(), nullable=False),
    sa.Column('performed_on', sa.Date(), nullable=False),
    sa.Column('device_settings', sa.JSON(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('performed_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['treatment_courses.id'], name=op.f('fk_treatment_sessions_course_id_treatment_courses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['performed_by_user_id'], ['users.id'], name=op.f('fk_treatment_sessions_performed_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treatment_sessions'))
    )
    with op.batch_alter_table('treatment_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_treatment_sessions_course_id'), ['course_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_treatment_sessions_created_at'), ['created_at'], unique=False)

    op.create_table('adverse_events',
    sa.Column('course_id', sa.Uuid(), nullable=False),
    sa.Column('milestone_id', sa.Uuid(), nullable=True),
    sa.Column('event_type', sa.String(length=30), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('onset_date', sa.Date(), nullable=False),
    sa.Column('resolution_date', sa.Date(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('reporter_role', sa.String(length=20), nullable=False),
    sa.Column('reported_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("event_type IN ('erythema', 'swelling', 'itching', 'pain', 'bruising', 'infection', 'hyperpigmentation', 'hypopigmentation', 'acneiform', 'other')", name=op.f('ck_adverse_events_type_known')),
    sa.CheckConstraint("severity IN ('mild', 'moderate', 'severe')", name=op.f('ck_adverse_events_severity_known')),
    sa.CheckConstraint('resolution_date IS NULL OR resolution_date >= onset_date', name=op.f('ck_adverse_events_resolved_after_onset')),
    sa.ForeignKeyConstraint(['course_id'], ['treatment_courses.id'], name=op.f('fk_adverse_events_course_id_treatment_courses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['milestone_id'], ['milestones.id'], name=op.f('fk_adverse_events_milestone_id_milestones'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reported_by_user_id'], ['users.id'], name=op.f('fk_adverse_events_reported_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adverse_events'))
    )
    with op.batch_alter_table('adverse_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adverse_events_course_id'), ['course_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_adverse_events_created_at'), ['created_at'], unique=False)

    op.create_table('assessments',
    sa.Column('course_id', sa.Uuid(), nullable=False),
    sa.Column('milestone_id', sa.Uuid(), nullable=False),
    sa.Column('rater_role', sa.String(length=20), nullable=False),
    sa.Column('rater_user_id', sa.Uuid(), nullable=True),
    sa.Column('gais', sa.Integer(), nullable=False),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("rater_role IN ('patient', 'clinician')", name=op.f('ck_assessments_rater_role_known')),
    sa.CheckConstraint("satisfaction IS NULL OR (satisfaction BETWEEN 0 AND 10 AND rater_role = 'patient')", name=op.f('ck_assessments_satisfaction_by_patient')),
    sa.CheckConstraint('gais BETWEEN 1 AND 5', name=op.f('ck_assessments_gais_range')),
    sa.ForeignKeyConstraint(['course_id'], ['treatment_courses.id'], name=op.f('fk_assessments_course_id_treatment_courses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['milestone_id'], ['milestones.id'], name=op.f('fk_assessments_milestone_id_milestones'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rater_user_id'], ['users.id'], name=op.f('fk_assessments_rater_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assessments')),
    sa.UniqueConstraint('milestone_id', 'rater_role', name=op.f('uq_assessments_milestone_id_rater_role'))
    )
    with op.batch_alter_table('assessments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assessments_course_id'), ['course_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assessments_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_assessments_milestone_id'), ['milestone_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('assessments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assessments_milestone_id'))
        batch_op.drop_index(batch_op.f('ix_assessments_created_at'))
        batch_op.drop_index(batch_op.f('ix_assessments_course_id'))

    op.drop_table('assessments')
    with op.batch_alter_table('adverse_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adverse_events_created_at'))
        batch_op.drop_index(batch_op.f('ix_adverse_events_course_id'))

    op.drop_table('adverse_events')
    with op.batch_alter_table('treatment_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_treatment_sessions_created_at'))
        batch_op.drop_index(batch_op.f('ix_treatment_sessions_course_id'))

    op.drop_table('treatment_sessions')
    with op.batch_alter_table('milestones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_milestones_created_at'))
        batch_op.drop_index(batch_op.f('ix_milestones_course_id'))

    op.drop_table('milestones')
    with op.batch_alter_table('treatment_courses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_treatment_courses_patient_id'))
        batch_op.drop_index(batch_op.f('ix_treatment_courses_created_at'))

    op.drop_table('treatment_courses')
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_patient_id'))
        batch_op.drop_index(batch_op.f('ix_invitations_created_at'))

    op.drop_table('invitations')
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_events_patient_id'))
        batch_op.drop_index(batch_op.f('ix_consent_events_created_at'))

    op.drop_table('consent_events')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_created_at'))
        batch_op.drop_index(batch_op.f('ix_patients_clinic_id'))

    op.drop_table('patients')
