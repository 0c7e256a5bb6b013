"""funds-only quotas; where an application's quota place was taken

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 22:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A2: an allocation may limit funds only (places NULL = not limited by places).
    with op.batch_alter_table('quotas', schema=None) as batch_op:
        batch_op.alter_column('places', existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quota_class_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('quota_college_code', sa.String(length=16), nullable=True))
    # Places taken so far were taken where the application is now.
    op.execute("UPDATE applications SET quota_class_code = class_code, quota_college_code = college_code "
               "WHERE quota_taken")


def downgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('quota_college_code')
        batch_op.drop_column('quota_class_code')
    op.execute("UPDATE quotas SET places = used_places WHERE places IS NULL")
    with op.batch_alter_table('quotas', schema=None) as batch_op:
        batch_op.alter_column('places', existing_type=sa.Integer(), nullable=False)
