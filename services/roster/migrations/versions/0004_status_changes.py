"""status changes, calendar, class moves

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 19:37:34.096767
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_runs',
    sa.Column('job', sa.String(length=32), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('ran_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('affected', sa.Integer(), nullable=False),
    sa.Column('details', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('job', 'period')
    )
    op.create_table('roster_settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('absences',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('student_number', sa.String(length=20), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('excused', sa.Boolean(), nullable=False),
    sa.Column('reachable', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('entered_by', sa.String(length=64), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['student_number'], ['students.student_number'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('student_number', 'day', name='uq_absences_student_day')
    )
    op.create_table('class_moves',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('student_number', sa.String(length=20), nullable=False),
    sa.Column('old_class_code', sa.String(length=16), nullable=False),
    sa.Column('new_class_code', sa.String(length=16), nullable=False),
    sa.Column('old_college_code', sa.String(length=16), nullable=False),
    sa.Column('new_college_code', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('actor_role', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['student_number'], ['students.student_number'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('class_moves', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_class_moves_student_number'), ['student_number'], unique=False)

    op.create_table('pending_graduations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('student_number', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('expected_on', sa.Date(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['student_number'], ['students.student_number'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pending_graduations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_graduations_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_pending_graduations_student_number'), ['student_number'], unique=False)

    op.create_table('status_applications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('student_number', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requester_role', sa.String(length=32), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('change_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['change_id'], ['status_changes.id'], ),
    sa.ForeignKeyConstraint(['student_number'], ['students.student_number'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('status_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_applications_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_status_applications_student_number'), ['student_number'], unique=False)

    op.create_table('status_attachments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('change_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('application_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('student_number', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['status_applications.id'], ),
    sa.ForeignKeyConstraint(['change_id'], ['status_changes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('status_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_attachments_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_status_attachments_change_id'), ['change_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_status_attachments_student_number'), ['student_number'], unique=False)

    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('details', sa.Text(), nullable=True))

    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grade', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_column('reported_at')
        batch_op.drop_column('grade')

    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.drop_column('details')
        batch_op.drop_column('kind')

    with op.batch_alter_table('status_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_attachments_student_number'))
        batch_op.drop_index(batch_op.f('ix_status_attachments_change_id'))
        batch_op.drop_index(batch_op.f('ix_status_attachments_application_id'))

    op.drop_table('status_attachments')
    with op.batch_alter_table('status_applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_applications_student_number'))
        batch_op.drop_index(batch_op.f('ix_status_applications_state'))

    op.drop_table('status_applications')
    with op.batch_alter_table('pending_graduations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_graduations_student_number'))
        batch_op.drop_index(batch_op.f('ix_pending_graduations_state'))

    op.drop_table('pending_graduations')
    with op.batch_alter_table('class_moves', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_class_moves_student_number'))

    op.drop_table('class_moves')
    op.drop_table('absences')
    op.drop_table('roster_settings')
    op.drop_table('calendar_runs')
