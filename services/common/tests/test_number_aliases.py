"""Former student numbers (R3) as every consumer resolves them (`services.common.student_copy`), on a
real migrated alias table (transfer's), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from services.common.db import Database
from services.common.events import StudentClassChanged
from services.common.student_copy import current_number, current_numbers, record_alias, with_current_numbers
from services.transfer.adapters.orm import NumberAlias

NOW = datetime(2027, 9, 1, tzinfo=UTC)
A, B, C, X = "23110101150001", "202301010101", "202301010199", "202301010142"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("transfer")


def rename(db: Database, old: str, new: str) -> None:
    with db.transaction() as s:
        record_alias(s, NumberAlias, old, new, NOW)


def test_a_chain_resolves_to_the_last_number_and_a_number_in_use_again_is_its_own(db: Database) -> None:
    rename(db, A, B)
    rename(db, B, C)
    with db.reading() as s:
        assert current_numbers(s, NumberAlias, [A, B, C, X]) == {A: C, B: C, C: C, X: X}
    rename(db, C, A)  # back to the first number
    with db.reading() as s:
        assert current_numbers(s, NumberAlias, [A, B, C]) == {A: A, B: A, C: A}
        assert current_numbers(s, NumberAlias, []) == {}


def test_payloads_are_renumbered_and_the_rest_kept(db: Database) -> None:
    rename(db, A, B)
    moves = [StudentClassChanged(student_number=n, move_id=1, old_class_code="2023010101",
                                 new_class_code="2023010102", old_college_code="01", new_college_code="01",
                                 reason="调班") for n in (A, X)]
    with db.reading() as s:
        renamed = with_current_numbers(s, NumberAlias, moves)
        assert current_number(s, NumberAlias, A) == B
    assert [m.student_number for m in renamed] == [B, X]
    assert renamed[0].model_dump(exclude={"student_number"}) == moves[0].model_dump(exclude={"student_number"})
    assert renamed[1] is moves[1]
