"""student-number changes (R3 mapping) and student photos (R15)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 22:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('number_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('old_number', sa.String(length=20), nullable=False),
    sa.Column('new_number', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('batch_id', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('actor_role', sa.String(length=32), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('number_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_number_changes_old_number'), ['old_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_number_changes_new_number'), ['new_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_number_changes_batch_id'), ['batch_id'], unique=False)

    op.create_table('student_photos',
    sa.Column('student_number', sa.String(length=20), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=True),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['student_number'], ['students.student_number'], ),
    sa.PrimaryKeyConstraint('student_number')
    )


def downgrade() -> None:
    op.drop_table('student_photos')
    with op.batch_alter_table('number_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_number_changes_batch_id'))
        batch_op.drop_index(batch_op.f('ix_number_changes_new_number'))
        batch_op.drop_index(batch_op.f('ix_number_changes_old_number'))
    op.drop_table('number_changes')
