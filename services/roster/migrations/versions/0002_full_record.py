"""full student record, code table edits, problem records, audit chain

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 16:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

RECORD_COLUMNS = [
    ('exam_number', sa.String(32)), ('id_type', sa.String(2)), ('ethnicity', sa.String(2)),
    ('political_status', sa.String(2)), ('native_place', sa.String(6)), ('birthplace', sa.String(6)),
    ('household_division', sa.String(6)), ('household_type', sa.String(2)), ('hmt_overseas', sa.String(2)),
    ('health', sa.String(2)), ('entry_month', sa.String(7)), ('entry_mode', sa.String(2)),
    ('study_mode', sa.String(2)), ('student_source', sa.String(2)), ('major_code', sa.String(16)),
    ('level', sa.String(2)), ('program_years', sa.String(4)), ('study_form', sa.String(2)),
    ('expected_graduation', sa.Date()), ('phone', sa.String(32)), ('email', sa.String(128)),
    ('postcode', sa.String(6)), ('address', sa.String(200)), ('home_address', sa.String(200)),
    ('mailing_address', sa.String(200)), ('guardians', sa.Text()),
]


def upgrade() -> None:
    with op.batch_alter_table('students', schema=None) as batch_op:
        # Passports and other documents are longer than an 18-digit resident ID.
        batch_op.alter_column('national_id', existing_type=sa.String(length=18), type_=sa.String(length=32),
                              existing_nullable=True)
        for name, type_ in RECORD_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.create_index('ix_students_exam_number', ['exam_number'], unique=False)
        batch_op.create_index('ix_students_name_gender_birth', ['name', 'gender', 'birth_date'], unique=False)

    op.create_table('code_entries',
    sa.Column('table_name', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('table_name', 'code')
    )
    op.create_table('problem_records',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('match_key', sa.String(length=160), nullable=False),
    sa.Column('student_numbers', sa.Text(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('match_key')
    )
    with op.batch_alter_table('problem_records', schema=None) as batch_op:
        batch_op.create_index('ix_problem_records_state', ['state'], unique=False)

    op.create_table('audit_chain',
    sa.Column('seq', BigId, autoincrement=False, nullable=False),
    sa.Column('audit_id', sa.BigInteger(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('audit_id')
    )
    head = op.create_table('audit_chain_head',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    # The head row exists from the start, so the first two writers serialise on its lock
    # instead of both inserting it.
    op.bulk_insert(head, [{'name': 'audit', 'seq': 0, 'hash': '0' * 64}])


def downgrade() -> None:
    op.drop_table('audit_chain_head')
    op.drop_table('audit_chain')
    with op.batch_alter_table('problem_records', schema=None) as batch_op:
        batch_op.drop_index('ix_problem_records_state')
    op.drop_table('problem_records')
    op.drop_table('code_entries')
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_index('ix_students_name_gender_birth')
        batch_op.drop_index('ix_students_exam_number')
        for name, _ in reversed(RECORD_COLUMNS):
            batch_op.drop_column(name)
        batch_op.alter_column('national_id', existing_type=sa.String(length=32), type_=sa.String(length=18),
                              existing_nullable=True)
