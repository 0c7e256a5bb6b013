"""transfers between institutions: admissions by transfer, the national student id

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 21:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows keep NULL: their national student id reads as "G" + the ID number.
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.add_column(sa.Column('national_student_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_students_national_student_id'), ['national_student_id'], unique=False)

    op.create_table('transfer_admissions',
    sa.Column('transfer_id', sa.String(length=64), nullable=False),
    sa.Column('student_number', sa.String(length=20), nullable=False),
    sa.Column('admitted_by', sa.String(length=64), nullable=False),
    sa.Column('admitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['student_number'], ['students.student_number'], ),
    sa.PrimaryKeyConstraint('transfer_id'),
    sa.UniqueConstraint('student_number')
    )


def downgrade() -> None:
    op.drop_table('transfer_admissions')
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_students_national_student_id'))
        batch_op.drop_column('national_student_id')
