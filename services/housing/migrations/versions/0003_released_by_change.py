"""the roster status change that ended a stay, so its revocation can give the bed back

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('occupancies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_by_change_id', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_occupancies_released_by_change_id'), ['released_by_change_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('occupancies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_occupancies_released_by_change_id'))
        batch_op.drop_column('released_by_change_id')
