"""campuses, building/room details, allocation of rooms and beds to colleges, check-in and override on stays

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 16:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campuses',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('buildings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campus_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('floors', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_buildings_campus_code'), ['campus_code'], unique=False)
    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('floor', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('room_type', sa.String(length=16), server_default='', nullable=False))
        batch_op.add_column(sa.Column('fee', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('college_code', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_rooms_college_code'), ['college_code'], unique=False)
    with op.batch_alter_table('beds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('college_code', sa.String(length=16), nullable=True))
    with op.batch_alter_table('occupancies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('override_reason', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('occupancies', schema=None) as batch_op:
        batch_op.drop_column('override_reason')
        batch_op.drop_column('checked_in_at')
    with op.batch_alter_table('beds', schema=None) as batch_op:
        batch_op.drop_column('college_code')
    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rooms_college_code'))
        batch_op.drop_column('college_code')
        batch_op.drop_column('fee')
        batch_op.drop_column('room_type')
        batch_op.drop_column('floor')
    with op.batch_alter_table('buildings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_buildings_campus_code'))
        batch_op.drop_column('floors')
        batch_op.drop_column('campus_code')
    op.drop_table('campuses')
