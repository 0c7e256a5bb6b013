"""grants, password history, account renames, session role

Each staff account's role and scope move from the account row into its first grant; the
current password hash of every account starts its history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 16:40:00
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'grants',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('username', sa.String(length=32), nullable=False),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('scope_kind', sa.String(length=16), nullable=False),
        sa.Column('scope_ids', sa.Text(), server_default='[]', nullable=False),
        sa.Column('granted_by', sa.String(length=64), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_by', sa.String(length=64), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_grants_username', 'grants', ['username'])
    op.create_table(
        'password_history',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('username', sa.String(length=32), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_password_history_username', 'password_history', ['username'])
    op.create_table(
        'account_renames',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('old_username', sa.String(length=32), nullable=False),
        sa.Column('new_username', sa.String(length=32), nullable=False),
        sa.Column('renamed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('event_id', sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_account_renames_old_username', 'account_renames', ['old_username'])
    op.create_index('ix_account_renames_new_username', 'account_renames', ['new_username'])
    with op.batch_alter_table('sessions') as batch:
        batch.add_column(sa.Column('role', sa.String(length=32), nullable=True))

    now = datetime.now(UTC)
    op.execute(sa.text(
        "INSERT INTO grants (username, role, scope_kind, scope_ids, granted_by, granted_at) "
        "SELECT username, role, scope_kind, scope_ids, 'migration', :now FROM accounts WHERE role <> 'student'"
    ).bindparams(now=now))
    op.execute(sa.text(
        "INSERT INTO password_history (username, password_hash, set_at) "
        "SELECT username, password_hash, COALESCE(password_changed_at, created_at) FROM accounts "
        "WHERE password_hash IS NOT NULL"
    ))
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('scope_ids')
        batch.drop_column('scope_kind')


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('scope_kind', sa.String(length=16), nullable=False, server_default='self'))
        batch.add_column(sa.Column('scope_ids', sa.Text(), server_default='[]', nullable=False))
    with op.batch_alter_table('sessions') as batch:
        batch.drop_column('role')
    op.drop_table('account_renames')
    op.drop_table('password_history')
    op.drop_table('grants')
