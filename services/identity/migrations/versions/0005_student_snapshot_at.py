"""students.snapshot_at: roster's time of the newest registration or class change the read copy holds, so a
redelivered older one does not put an old name or class back

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.add_column(sa.Column('snapshot_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_column('snapshot_at')
