"""The one rename step every consumer of `student.number_changed` runs (`services.common.renames`), on a
real migrated consumer database (aid's tables), SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.aid import handlers
from services.aid.adapters.orm import NeedyRecord, Student
from services.common.db import Database
from services.common.envelope import Envelope, new_event
from services.common.errors import NotFound
from services.common.events import StudentNumberChanged
from services.common.models import AuditEntry, InboxRecord
from services.common.number_aliases import NumberAlias, current_number
from services.common.renames import Moved, NumberChange, Renumbering, rename_student
from services.common.testing import ROSTER, registered

OLD, NEW = "23110101150001", "202301010101"
NEEDY = ((NeedyRecord.__table__, "student_number"),)


def number_changed(old: str = OLD, new: str = NEW) -> Envelope:
    return new_event("student.number_changed",
                     StudentNumberChanged(old_number=old, new_number=new, changed_at=datetime.now(UTC)),
                     source="roster", actor=ROSTER)


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("aid")


def needy(db: Database, number: str) -> None:
    with db.transaction() as s:
        s.add(NeedyRecord(student_number=number, academic_year="2026-2027", level="difficult", reasons="家庭困难",
                          collected_by="c", collected_role="counselor", identified_at=datetime.now(UTC)))


def run(db: Database, envelope: Envelope, how: Renumbering) -> NumberChange | None:
    with db.transaction() as s:
        return rename_student(s, envelope, how)


def counts(db: Database) -> tuple[int, int, int]:
    """(audit entries, aliases, inbox records)"""
    with db.reading() as s:
        return tuple(s.scalar(select(func.count()).select_from(m))  # type: ignore[return-value]
                     for m in (AuditEntry, NumberAlias, InboxRecord))


def test_the_copy_columns_and_own_part_follow_once_with_alias_and_audit(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    needy(db, OLD)
    seen: list[NumberChange] = []

    def own(s: Session, change: NumberChange) -> Moved:
        seen.append(change)
        return Moved(rows={"elsewhere": 2}, before={"note": "旧"}, after={"note": "新"})

    how = Renumbering(service="aid", consumer="test.renumber", copy=Student, columns=NEEDY, own=own)
    event = number_changed()
    done = run(db, event, how)
    assert done is not None and (done.old, done.new, done.event_id) == (OLD, NEW, str(event.event_id))
    before = counts(db)
    assert run(db, event, how) is None  # redelivered: nothing more happens
    assert counts(db) == before and len(seen) == 1
    with db.reading() as s:
        assert s.get(Student, OLD) is None and s.get(Student, NEW) is not None
        assert set(s.scalars(select(NeedyRecord.student_number))) == {NEW}
        assert current_number(s, OLD) == NEW
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "student.renumber")).one()
    assert (entry.actor, entry.target) == ("system:aid", NEW)
    assert json.loads(entry.before) == {"student_number": OLD, "note": "旧"}
    assert json.loads(entry.after) == {"student_number": NEW, "moved": {"elsewhere": 2, "needy_records": 1},
                                       "note": "新", "event_id": str(event.event_id)}


def test_no_copy_under_either_number_is_retried_and_leaves_nothing(db: Database) -> None:
    needy(db, OLD)
    how = Renumbering(service="aid", consumer="test.renumber", copy=Student, columns=NEEDY)
    with pytest.raises(NotFound):
        run(db, number_changed(), how)
    with db.reading() as s:
        assert set(s.scalars(select(NeedyRecord.student_number))) == {OLD}
    assert counts(db) == (0, 0, 0)
    # where another row shows the student is known, the rename goes ahead without a copy
    assert run(db, number_changed(), Renumbering(service="aid", consumer="test.renumber", copy=Student,
                                                 columns=NEEDY, copy_required=False)) is not None
    with db.reading() as s:
        assert set(s.scalars(select(NeedyRecord.student_number))) == {NEW}
        assert current_number(s, OLD) == NEW


def test_a_newer_copy_under_the_new_number_wins(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    handlers.on_student_registered(db, registered(NEW, klass="2023010102"))
    run(db, number_changed(), Renumbering(service="aid", consumer="test.renumber", copy=Student))
    with db.reading() as s:
        assert s.get(Student, OLD) is None and s.get(Student, NEW).class_code == "2023010102"
        assert s.scalar(select(func.count()).select_from(Student)) == 1


def test_an_own_part_that_finds_the_rename_done_stops_the_step(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    how = Renumbering(service="aid", consumer="test.renumber", copy=Student, own=lambda s, change: None)
    assert run(db, number_changed(), how) is None
    with db.reading() as s:
        assert s.get(Student, OLD) is not None and s.get(Student, NEW) is None
    assert counts(db) == (0, 0, 2)  # no audit entry, no alias; the event is in the inbox beside the registration
