"""field policies and change requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 16:55:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('field_policies',
    sa.Column('field', sa.String(length=32), nullable=False),
    sa.Column('student_access', sa.String(length=16), nullable=False),
    sa.Column('staff_access', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('field')
    )
    op.create_table('change_requests',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('student_number', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('changes', sa.Text(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requester_role', sa.String(length=32), nullable=False),
    sa.Column('reviews', sa.Text(), nullable=False),
    sa.Column('college_code', sa.String(length=16), nullable=False),
    sa.Column('class_code', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.create_index('ix_change_requests_state', ['state'], unique=False)
        batch_op.create_index('ix_change_requests_student_number', ['student_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_change_requests_student_number')
        batch_op.drop_index('ix_change_requests_state')
    op.drop_table('change_requests')
    op.drop_table('field_policies')
