"""Former student numbers (R3) as every consumer resolves them (`services.common.number_aliases`), on a
real migrated database, SQLite and PostgreSQL; and the one alias model against each consumer's migrations."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from services.common.db import Database
from services.common.events import StudentClassChanged
from services.common.number_aliases import (
    NumberAlias,
    NumberAliasBase,
    current_number,
    current_numbers,
    record_alias,
    with_current_number,
    with_current_numbers,
)

NOW = datetime(2027, 9, 1, tzinfo=UTC)
A, B, C, X = "23110101150001", "202301010101", "202301010199", "202301010142"
CONSUMERS = ("identity", "housing", "aid", "transfer")
SERVICES_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("transfer")


def rename(db: Database, old: str, new: str) -> None:
    with db.transaction() as s:
        record_alias(s, old, new, NOW)


def test_a_chain_resolves_to_the_last_number_and_a_number_in_use_again_is_its_own(db: Database) -> None:
    rename(db, A, B)
    rename(db, B, C)
    with db.reading() as s:
        assert current_numbers(s, [A, B, C, X]) == {A: C, B: C, C: C, X: X}
        assert {a.old_number: a.new_number for a in s.query(NumberAlias)} == {A: C, B: C}  # stored resolved
    rename(db, C, A)  # back to the first number
    with db.reading() as s:
        assert current_numbers(s, [A, B, C]) == {A: A, B: A, C: A}
        assert current_numbers(s, []) == {}
        assert s.get(NumberAlias, A) is None


def test_a_second_change_for_a_former_number_points_it_at_the_latest(db: Database) -> None:
    rename(db, A, B)
    later = datetime(2027, 9, 2, tzinfo=UTC)
    with db.transaction() as s:
        record_alias(s, A, C, later)
    with db.reading() as s:
        assert current_numbers(s, [A, B, C]) == {A: C, B: B, C: C}
        at = s.get(NumberAlias, A).renamed_at
        assert (at if at.tzinfo else at.replace(tzinfo=UTC)) == later


def class_move(number: str) -> StudentClassChanged:
    return StudentClassChanged(student_number=number, move_id=1, old_class_code="2023010101",
                               new_class_code="2023010102", old_college_code="01", new_college_code="01",
                               reason="调班")


def test_payloads_are_renumbered_and_the_rest_kept(db: Database) -> None:
    rename(db, A, B)
    moves = [class_move(n) for n in (A, X)]
    with db.reading() as s:
        renamed = with_current_numbers(s, moves)
        assert current_number(s, A) == B
        assert with_current_number(s, moves[0]).student_number == B
    assert [m.student_number for m in renamed] == [B, X]
    assert renamed[0].model_dump(exclude={"student_number"}) == moves[0].model_dump(exclude={"student_number"})
    assert renamed[1] is moves[1]


# --- one model, four migrations ------------------------------------------------------------------

def env_metadata(service: str, monkeypatch: pytest.MonkeyPatch) -> list[MetaData]:
    """The metadata the service's `migrations/env.py` hands alembic (what autogenerate compares)."""
    seen: list[list[MetaData]] = []
    monkeypatch.setattr("services.common.migrate.run_env", seen.append)
    runpy.run_path(str(SERVICES_DIR / service / "migrations" / "env.py"))
    return seen[0]


@pytest.mark.parametrize("service", CONSUMERS)
def test_the_shared_model_is_what_each_consumer_migrated(service: str, migrated_db: Callable[[str], Database],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The table stays as each consumer's own migration made it (no new migration), and autogenerate
    against the service's metadata finds nothing to add or drop — the alias table included."""
    database = migrated_db(service)
    metadata = env_metadata(service, monkeypatch)
    assert NumberAliasBase.metadata in metadata
    only_aliases: dict[str, Any] = {"compare_type": True,
                                    "include_name": lambda name, kind, _: kind != "table" or name == "number_aliases"}
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection, opts=only_aliases),
                                NumberAliasBase.metadata) == []
        assert compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata) == []
