"""org units read model (roster's org tree from org.units_changed)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 20:57:59
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'org_units',
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('parent_code', sa.String(length=16), nullable=True),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code'),
    )
    op.create_index('ix_org_units_kind', 'org_units', ['kind'])


def downgrade() -> None:
    op.drop_index('ix_org_units_kind', table_name='org_units')
    op.drop_table('org_units')
