"""`bulk.insert_rows` (COPY on PostgreSQL, executemany elsewhere) and `bulk.next_ids`, on both back ends:
every value comes back as it went in, escapes and NULLs included; errors are SQLAlchemy's as for any
statement; drawn ids are new and the rows inserted with them keep them. `copying_behind`: the COPY
really runs beside the caller, and everything after it in the transaction sees its rows or its error.
(The test session runs under eventlet with psycogreen, as the services do.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

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
    func,
    select,
)
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError, OperationalError

from services.common.bulk import copying_behind, insert_rows, next_ids
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


def test_rows_copied_behind_are_there_for_what_follows(db: Database) -> None:
    rows = [{"code": f"c{i}", "note": note, "n": i} for i, note in enumerate(AWKWARD)]
    with db.transaction() as s:
        with copying_behind(s):
            insert_rows(s, THINGS, rows[:3])
            insert_rows(s, THINGS, rows[3:])  # waits for the first COPY, then runs behind
            assert s.scalar(select(func.count()).select_from(THINGS)) == len(rows)  # waited for before it runs
            insert_rows(s, THINGS, [{"code": "last"}])  # still running at the end of the block: waited for there
        assert s.scalar(select(func.count()).select_from(THINGS)) == len(rows) + 1
    with db.reading() as s:
        stored = [dict(r._mapping) for r in s.execute(select(THINGS.c.code, THINGS.c.note, THINGS.c.n)
                                                      .where(THINGS.c.code != "last").order_by(THINGS.c.n))]
    assert stored == rows


@pytest.mark.parametrize("seen_at", ["next statement", "end of block"])
def test_an_error_behind_is_raised_after_it_and_writes_nothing(db: Database, seen_at: str) -> None:
    with pytest.raises(IntegrityError), db.transaction() as s:
        with copying_behind(s):
            insert_rows(s, THINGS, [{"code": "same"}, {"code": "same"}])
            if seen_at == "next statement":
                s.execute(select(func.count()).select_from(THINGS))
                pytest.fail("the COPY's error comes first")
    with db.reading() as s:
        assert s.scalars(select(THINGS.c.code)).all() == []


@pytest.fixture
def key_held(db: Database, db_backend: str) -> Iterator[Any]:
    """Another transaction, open, that has inserted the code 'held': a COPY of the same code waits for it."""
    if db_backend != "postgresql":
        pytest.skip("SQLite copies nothing behind")
    import psycopg2

    other = psycopg2.connect(db.engine.url.render_as_string(hide_password=False))
    try:
        with other.cursor() as cursor:
            cursor.execute("INSERT INTO bulk_things (code) VALUES ('held')")
        yield other
    finally:
        other.close()


def test_the_copy_runs_while_the_caller_goes_on(db: Database, key_held: Any) -> None:
    """Behind, insert_rows returns while its COPY waits for the key, and the caller can end the other transaction
    itself; a COPY in the caller's thread would wait out the lock timeout instead and fail."""
    with db.transaction() as s:
        s.execute(sql("SET LOCAL lock_timeout = '10s'"))
        with copying_behind(s):
            insert_rows(s, THINGS, [{"code": "mine"}, {"code": "held"}])
            key_held.rollback()  # the COPY can go on now
        assert s.scalars(select(THINGS.c.code).order_by(THINGS.c.code)).all() == ["held", "mine"]


def test_a_lock_timeout_behind_is_sqlalchemys_error(db: Database, key_held: Any) -> None:
    with pytest.raises(OperationalError, match="lock timeout"), db.transaction() as s:
        s.execute(sql("SET LOCAL lock_timeout = '200ms'"))
        with copying_behind(s):
            insert_rows(s, THINGS, [{"code": "held"}])


def test_a_copy_longer_than_the_sockets_buffers_arrives_whole_on_a_cooperative_connection(
        db: Database, db_backend: str) -> None:
    """psycogreen makes the connections non-blocking; COPY runs with the wait callback unset, in this thread and
    behind: libpq must still send every byte (8 MB here, several times what a socket buffers)."""
    if db_backend == "postgresql":
        from psycopg2 import extensions

        assert extensions.get_wait_callback() is not None  # the services' own set-up
    rows = [{"code": f"c{i}", "note": "备注" * 130 + str(i)} for i in range(10000)]
    with db.transaction() as s:
        insert_rows(s, THINGS, rows[:5000])
        with copying_behind(s):
            insert_rows(s, THINGS, rows[5000:])
    with db.reading() as s:
        stored = s.execute(select(func.count(), func.sum(func.length(THINGS.c.note)))).one()
    assert tuple(stored) == (len(rows), sum(len(r["note"]) for r in rows))
