"""number_aliases: a student's former numbers (R3), so late events for them reach the renamed student

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 23:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('number_aliases',
    sa.Column('old_number', sa.String(length=20), nullable=False),
    sa.Column('new_number', sa.String(length=20), nullable=False),
    sa.Column('renamed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('old_number')
    )
    with op.batch_alter_table('number_aliases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_number_aliases_new_number'), ['new_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('number_aliases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_number_aliases_new_number'))
    op.drop_table('number_aliases')
