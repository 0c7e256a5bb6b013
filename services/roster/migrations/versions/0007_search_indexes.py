"""search and statistics over a million students (issue 4): PostgreSQL indexes and statistics

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 23:00:00

- `ix_students_name_chars`: GIN over the characters of the name; search adds "the name's characters
  include the query's" to "name contains" (handlers._name_contains). Chinese names of two to four
  characters are too short for trigrams, and a GIN of characters needs no extension.
- `ix_students_number_pattern`: number prefixes (LIKE 'q%') whatever the database collation.
- Expression statistics for the grade (first four digits of the number) and region (first two of the
  household division) groupings: without them the planner expects a group per row, gives up the
  parallel scan and takes twice as long.
SQLite: nothing (its searches stay as they were).
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE INDEX IF NOT EXISTS ix_students_name_chars ON students "
               "USING gin (string_to_array(name, NULL))")
    op.execute("CREATE INDEX IF NOT EXISTS ix_students_number_pattern ON students "
               "(student_number varchar_pattern_ops)")
    op.execute("CREATE STATISTICS IF NOT EXISTS st_students_grade ON (substr(student_number, 1, 4)) FROM students")
    op.execute("CREATE STATISTICS IF NOT EXISTS st_students_region ON (substr(household_division, 1, 2)) "
               "FROM students")
    op.execute("ANALYZE students")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP STATISTICS IF EXISTS st_students_region")
    op.execute("DROP STATISTICS IF EXISTS st_students_grade")
    op.execute("DROP INDEX IF EXISTS ix_students_number_pattern")
    op.execute("DROP INDEX IF EXISTS ix_students_name_chars")
