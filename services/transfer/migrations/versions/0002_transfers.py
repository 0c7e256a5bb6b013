"""transfers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 20:07:42.069054
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('is_workday', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=100), nullable=True),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('interchange_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=True),
    sa.Column('transfer_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=True),
    sa.Column('peer_code', sa.String(length=16), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('headers', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=32), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('direction', 'message_id', name='uq_interchange_direction_message')
    )
    with op.batch_alter_table('interchange_messages', schema=None) as batch_op:
        batch_op.create_index('ix_interchange_due', ['direction', 'state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_interchange_messages_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_interchange_messages_transfer_id'), ['transfer_id'], unique=False)

    op.create_table('internal_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('student_number', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('from_unit', sa.String(length=16), nullable=False),
    sa.Column('to_unit', sa.String(length=16), nullable=False),
    sa.Column('to_class_code', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('approvals', sa.Text(), nullable=False),
    sa.Column('filed_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('internal_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_internal_changes_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_internal_changes_student_number'), ['student_number'], unique=False)

    op.create_table('peers',
    sa.Column('code', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('province', sa.String(length=2), nullable=False),
    sa.Column('authority_code', sa.String(length=16), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('transfer_settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('transfers',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('peer_code', sa.String(length=10), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=True),
    sa.Column('stage_started_on', sa.Date(), nullable=True),
    sa.Column('stage_deadline', sa.Date(), nullable=True),
    sa.Column('transfer_kind', sa.String(length=16), nullable=False),
    sa.Column('national_student_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('gender', sa.String(length=1), nullable=False),
    sa.Column('birth_date', sa.String(length=10), nullable=False),
    sa.Column('id_type', sa.String(length=2), nullable=False),
    sa.Column('id_number', sa.String(length=32), nullable=False),
    sa.Column('outflow_student_number', sa.String(length=20), nullable=True),
    sa.Column('inflow_student_number', sa.String(length=20), nullable=True),
    sa.Column('target_class_code', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('out_of_term_reason', sa.Text(), nullable=True),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('inflow_authority', sa.String(length=16), nullable=True),
    sa.Column('inflow_approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('record', sa.Text(), nullable=True),
    sa.Column('record_sha256', sa.String(length=64), nullable=True),
    sa.Column('outcome_reason', sa.Text(), nullable=True),
    sa.Column('filed_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfers_direction'), ['direction'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_national_student_id'), ['national_student_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_outflow_student_number'), ['outflow_student_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_peer_code'), ['peer_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_stage_deadline'), ['stage_deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_state'), ['state'], unique=False)

    op.create_table('peer_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('peer_code', sa.String(length=10), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('secret', sa.LargeBinary(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['peer_code'], ['peers.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('peer_code', 'key_id', name='uq_peer_keys_peer_key')
    )
    with op.batch_alter_table('peer_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_peer_keys_peer_code'), ['peer_code'], unique=False)

    op.create_table('transfer_stages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('transfer_id', sa.String(length=36), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('deadline', sa.Date(), nullable=True),
    sa.Column('deadline_passed', sa.Boolean(), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['transfer_id'], ['transfers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transfer_stages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfer_stages_transfer_id'), ['transfer_id'], unique=False)

    op.create_table('transfer_files',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('transfer_id', sa.String(length=36), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['transfer_id'], ['transfers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transfer_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfer_files_transfer_id'), ['transfer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transfer_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfer_files_transfer_id'))

    op.drop_table('transfer_files')
    with op.batch_alter_table('transfer_stages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfer_stages_transfer_id'))

    op.drop_table('transfer_stages')
    with op.batch_alter_table('peer_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_peer_keys_peer_code'))

    op.drop_table('peer_keys')
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_state'))
        batch_op.drop_index(batch_op.f('ix_transfers_stage_deadline'))
        batch_op.drop_index(batch_op.f('ix_transfers_peer_code'))
        batch_op.drop_index(batch_op.f('ix_transfers_outflow_student_number'))
        batch_op.drop_index(batch_op.f('ix_transfers_national_student_id'))
        batch_op.drop_index(batch_op.f('ix_transfers_direction'))

    op.drop_table('transfers')
    op.drop_table('transfer_settings')
    op.drop_table('peers')
    with op.batch_alter_table('internal_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_internal_changes_student_number'))
        batch_op.drop_index(batch_op.f('ix_internal_changes_state'))

    op.drop_table('internal_changes')
    with op.batch_alter_table('interchange_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interchange_messages_transfer_id'))
        batch_op.drop_index(batch_op.f('ix_interchange_messages_state'))
        batch_op.drop_index('ix_interchange_due')

    op.drop_table('interchange_messages')
    op.drop_table('calendar_days')
