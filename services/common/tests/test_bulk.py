"""`bulk.insert_rows` (COPY on PostgreSQL, executemany elsewhere) and `bulk.next_ids`, on both back ends:
every value comes back as it went in, escapes and NULLs included; errors are SQLAlchemy's as for any
statement; drawn ids are new and the rows inserted with them keep them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.exc import IntegrityError

from services.common.bulk import insert_rows, next_ids
from services.common.db import Database

METADATA = MetaData()
THINGS = Table(
    "bulk_things", METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("code", String(16), unique=True),
    Column("note", Text),
    Column("n", Integer),
    Column("amount", Numeric(10, 2)),
    Column("flag", Boolean),
    Column("day", Date),
    Column("at", DateTime(timezone=True)),
    Column("raw", LargeBinary),
)
AWKWARD = ["tab\there", "line\nbreak", "carriage\rreturn", "back\\slash \\N", "\\N", "", "引号\"和'单引号", "a,b;c"]


@pytest.fixture
def db(database_url_for: Callable[[str], str]) -> Iterator[Database]:
    database = Database(database_url_for("bulk"))
    METADATA.create_all(database.engine)
    yield database
    database.dispose()


def test_values_come_back_as_they_went_in(db: Database) -> None:
    at = datetime(2026, 9, 1, 8, 30, 15, 123456, tzinfo=UTC)
    rows = [{"code": f"c{i}", "note": note, "n": i, "amount": Decimal("12.50"), "flag": i % 2 == 0,
             "day": date(2026, 9, i + 1), "at": at, "raw": bytes([0, 1, 92, 255, i])}
            for i, note in enumerate(AWKWARD)]
    rows.append({"code": "nulls", "note": None, "n": None, "amount": None, "flag": None, "day": None, "at": None,
                 "raw": None})
    with db.transaction() as s:
        insert_rows(s, THINGS, rows)
    with db.reading() as s:
        stored = [dict(r._mapping) for r in s.execute(select(THINGS).order_by(THINGS.c.id))]
    for row in stored:
        if row["at"] is not None and row["at"].tzinfo is None:  # SQLite keeps UTC without the zone
            row["at"] = row["at"].replace(tzinfo=UTC)
        row["raw"] = bytes(row["raw"]) if row["raw"] is not None else None
        del row["id"]
    assert stored == rows


def test_omitted_columns_take_their_defaults_and_nothing_is_a_no_op(db: Database) -> None:
    with db.transaction() as s:
        insert_rows(s, THINGS, [])
        insert_rows(s, THINGS, [{"code": "a"}, {"code": "b"}])
    with db.reading() as s:
        ids = s.scalars(select(THINGS.c.id).order_by(THINGS.c.code)).all()
    assert len(set(ids)) == 2 and all(isinstance(i, int) for i in ids)


def test_a_violated_constraint_is_sqlalchemys_integrity_error_and_writes_nothing(db: Database) -> None:
    with pytest.raises(IntegrityError), db.transaction() as s:
        insert_rows(s, THINGS, [{"code": "same"}, {"code": "same"}])
    with db.reading() as s:
        assert s.scalars(select(THINGS.c.code)).all() == []


def test_drawn_ids_are_new_and_kept(db: Database) -> None:
    with db.transaction() as s:
        insert_rows(s, THINGS, [{"code": "before"}])
        ids = next_ids(s, THINGS, 3)
        insert_rows(s, THINGS, [{"id": i, "code": f"drawn{i}"} for i in ids])
        assert next_ids(s, THINGS, 0) == []
    with db.transaction() as s:
        later = next_ids(s, THINGS, 2)
        insert_rows(s, THINGS, [{"code": "after"}])  # the column's own default after drawn ids
    with db.reading() as s:
        by_code = dict(s.execute(select(THINGS.c.code, THINGS.c.id)).all())
    assert len(set(ids)) == 3 and by_code["before"] < min(ids)
    assert [by_code[f"drawn{i}"] for i in ids] == ids
    assert min(later) > max(ids) and by_code["after"] > max(ids)
