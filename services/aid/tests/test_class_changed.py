"""调班 (R9) as aid applies it to the enrolled register, exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from services.aid import applications, handlers, registers
from services.aid.adapters.orm import Application, QuotaRow, Student
from services.aid.tests import flow
from services.common.db import Database
from services.common.errors import Forbidden, NotFound
from services.common.models import AuditEntry, InboxRecord
from services.common.testing import caller, class_changed, registered

NUMBER = "202301010105"
OLD, NEW = "2023010101", "2023020101"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("aid")


def place(db: Database) -> tuple[str, str]:
    with db.reading() as s:
        row = s.get(Student, NUMBER)
        assert row is not None
        return row.class_code, row.college_code


def inbox(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(InboxRecord)) or 0


def test_a_class_move_applies_once_and_moves_the_scope(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER, klass=OLD))
    move = class_changed(NUMBER, 1, NEW)
    handlers.on_student_class_changed(db, move)
    assert place(db) == (NEW, "02")
    assert handlers.enrolled_student(db, caller("deputy_secretary", "college", "02"), NUMBER)["class_code"] == NEW
    with pytest.raises(Forbidden):
        handlers.enrolled_student(db, caller("counselor", "classes", OLD), NUMBER)

    handlers.on_student_class_changed(db, class_changed(NUMBER, 2, "2023020102", old_class=NEW))
    inboxed = inbox(db)
    handlers.on_student_class_changed(db, move)  # redelivered: must not undo the later move
    assert place(db) == ("2023020102", "02")
    assert inbox(db) == inboxed


def test_an_early_move_waits_for_the_registration(db: Database) -> None:
    registration = registered(NUMBER, klass=OLD)
    move = class_changed(NUMBER, 1, NEW)  # made after the registration, delivered before it
    with pytest.raises(NotFound):
        handlers.on_student_class_changed(db, move)
    handlers.on_student_registered(db, registration)
    handlers.on_student_class_changed(db, move)  # the retry: the failed delivery was not recorded
    assert place(db) == (NEW, "02")


# -- applications follow the move while under review; quota places stay where they were taken ---------
OLD_CLASS, FAR_CLASS = "2025010101", "2025020101"  # college 01 → college 02
FAR_COUNSELOR = caller("counselor", "classes", FAR_CLASS)
FAR_DEPUTY = caller("deputy_secretary", "college", "02")


def used_places(db: Database, level: str, unit: str) -> int:
    with db.reading() as s:
        return s.scalars(select(QuotaRow.used_places).where(QuotaRow.level == level, QuotaRow.unit_code == unit)).one()


def test_applications_under_review_follow_the_student_and_places_stay_where_taken(db: Database) -> None:
    waiting, approved, awarded = (flow.number(i, OLD_CLASS) for i in (1, 2, 3))
    flow.enrol(db, waiting, approved, awarded)
    for serial, n in enumerate((waiting, approved, awarded), start=1):
        flow.identify(db, n, serial=serial)
    for level, places, extra in (("programme", 10, {}), ("college", 5, {"college_code": "01"}),
                                 ("college", 5, {"college_code": "02"}),
                                 ("class", 3, {"class_code": OLD_CLASS, "college_code": "01"}),
                                 ("class", 3, {"class_code": FAR_CLASS, "college_code": "02"})):
        registers.allocate_quota(db, flow.OPERATOR, {"programme_code": "GJZXJ", "academic_year": flow.YEAR,
                                                     "level": level, "places": places, **extra})
    ids = {n: flow.apply(db, n)["id"] for n in (waiting, approved, awarded)}
    applications.review_application(db, flow.COUNSELOR, ids[approved], "approve")
    flow.approve_through(db, ids[awarded])

    for n in (waiting, approved, awarded):
        handlers.on_student_class_changed(db, class_changed(n, 1, FAR_CLASS, old_class=OLD_CLASS))

    def row(n: str) -> tuple[str, str, bool, str | None]:
        with db.reading() as s:
            app = s.get(Application, ids[n])
            assert app is not None
            return app.class_code, app.college_code, app.quota_taken, app.quota_class_code

    assert row(waiting) == (FAR_CLASS, "02", False, None)
    assert row(approved) == (FAR_CLASS, "02", True, OLD_CLASS)  # the place stays with the class that granted it
    assert row(awarded) == (OLD_CLASS, "01", True, OLD_CLASS)  # granted: keeps the class of that year's award
    # The old counselor's queue no longer has it, nor may they review it; the new counselor's has it.
    assert applications.review_queue(db, flow.COUNSELOR)["items"] == []
    with pytest.raises(Forbidden):
        applications.review_application(db, flow.COUNSELOR, ids[waiting], "approve")
    assert [a["id"] for a in applications.review_queue(db, FAR_COUNSELOR)["items"]] == [ids[waiting]]
    # The college step of the approved one is the new college's now.
    assert [a["id"] for a in applications.review_queue(db, FAR_DEPUTY)["items"]] == [ids[approved]]
    assert (used_places(db, "class", OLD_CLASS), used_places(db, "class", FAR_CLASS)) == (2, 0)

    # A return gives the place back to the old class and college; approving anew takes one from the new class.
    applications.review_application(db, FAR_DEPUTY, ids[approved], "return", "请补充材料")
    assert row(approved) == (FAR_CLASS, "02", False, None)
    assert (used_places(db, "class", OLD_CLASS), used_places(db, "college", "01")) == (1, 1)
    applications.review_application(db, FAR_COUNSELOR, ids[waiting], "approve")
    assert (used_places(db, "class", FAR_CLASS), used_places(db, "college", "02"), used_places(db, "programme", "")) \
        == (1, 1, 2)
    with db.reading() as s:
        moved = s.scalars(select(AuditEntry.target).where(AuditEntry.action == "application.class_move")).all()
    assert sorted(moved) == sorted(f"application:{ids[n]}" for n in (waiting, approved))
    # The same move heard again changes nothing more.
    handlers.on_student_class_changed(db, class_changed(waiting, 1, FAR_CLASS, old_class=OLD_CLASS))
    assert row(waiting) == (FAR_CLASS, "02", True, FAR_CLASS)
