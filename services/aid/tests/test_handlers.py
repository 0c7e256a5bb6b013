"""Aid use cases against a real, migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from services.aid import handlers
from services.aid.adapters.orm import Student
from services.aid.tests.factories import caller, registered, status_changed
from services.common.caller import SYSTEM, system_caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.models import AuditEntry, InboxRecord

NUMBER = "202301010105"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("aid")


def row(db: Database, number: str = NUMBER) -> Student:
    with db.reading() as s:
        found = s.get(Student, number)
        assert found is not None
        return found


def audit_entries(db: Database, action: str) -> list[AuditEntry]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.id)))


def inbox_count(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(InboxRecord)) or 0


def test_registered_student_enters_the_enrolled_register(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER, name="李娜"))
    student = row(db)
    assert (student.name, student.gender, student.college_code, student.class_code) == \
        ("李娜", "2", "01", "2023010101")
    assert (student.status, student.left, student.stop_instalments) == ("enrolled", False, False)
    assert student.last_change_id is None
    assert handlers.health(db)["students_known"] == 1


def test_a_duplicate_delivery_has_no_effect(db: Database) -> None:
    event = registered(NUMBER, name="李娜")
    handlers.on_student_registered(db, event)
    with db.transaction() as s:  # a later correction the duplicate must not undo
        student = s.get(Student, NUMBER)
        assert student is not None
        student.name = "李娜娜"
    handlers.on_student_registered(db, event)
    assert row(db).name == "李娜娜"
    assert inbox_count(db) == 1


def test_a_duplicate_status_change_stops_instalments_once(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    left = status_changed(NUMBER, 7, "graduated", left=True)
    handlers.on_student_status_changed(db, left)
    handlers.on_student_status_changed(db, left)
    assert len(audit_entries(db, "instalments.stop")) == 1
    assert inbox_count(db) == 2


def test_leaving_updates_the_register_and_stops_instalments(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 7, "graduated", left=True))
    student = row(db)
    assert (student.status, student.left, student.last_change_id, student.stop_instalments) == \
        ("graduated", True, 7, True)
    [entry] = audit_entries(db, "instalments.stop")
    assert (entry.actor, entry.role, entry.target, entry.correlation_id) == \
        ("system:aid", SYSTEM, NUMBER, "corr-7")
    assert json.loads(entry.before or "") == {"stop_instalments": False}
    assert json.loads(entry.after or "")["change_id"] == 7


def test_a_change_that_keeps_the_student_does_not_stop_instalments(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 3, "suspended", left=False))
    student = row(db)
    assert (student.status, student.left, student.stop_instalments) == ("suspended", False, False)
    assert audit_entries(db, "instalments.stop") == []


def test_revoking_the_departure_resumes_instalments(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 7, "graduated", left=True))
    handlers.on_student_status_changed(
        db, status_changed(NUMBER, 8, "enrolled", left=False, old_status="graduated", revokes=7))
    student = row(db)
    assert (student.status, student.left, student.stop_instalments) == ("enrolled", False, False)
    assert len(audit_entries(db, "instalments.resume")) == 1


def test_an_older_change_arriving_late_is_ignored(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 9, "withdrawn", left=True))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 4, "suspended", left=False))
    student = row(db)
    assert (student.status, student.left, student.last_change_id) == ("withdrawn", True, 9)


def test_a_late_registered_event_does_not_undo_a_status_change(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 7, "graduated", left=True))
    handlers.on_student_registered(db, registered(NUMBER, name="李娜", status="enrolled"))
    student = row(db)
    assert (student.status, student.left, student.stop_instalments) == ("graduated", True, True)


def test_a_student_registered_as_gone_has_instalments_stopped(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER, status="graduated", left=True))
    assert row(db).stop_instalments


def test_a_change_for_an_unknown_student_fails_and_leaves_no_trace(db: Database) -> None:
    event = status_changed(NUMBER, 7, "graduated", left=True)
    with pytest.raises(NotFound):
        handlers.on_student_status_changed(db, event)
    assert inbox_count(db) == 0  # rolled back: a retry after registration applies it
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, event)
    assert row(db).stop_instalments


@pytest.fixture
def two_classes(db: Database) -> Database:
    handlers.on_student_registered(db, registered(NUMBER, klass="2023010101"))
    handlers.on_student_registered(db, registered("202302030207", klass="2023020302"))
    return db


@pytest.mark.parametrize("role", ["aid_operator", "aid_auditor", "student_affairs"])
def test_the_aid_centre_and_student_affairs_see_every_student(two_classes: Database, role: str) -> None:
    view = handlers.enrolled_student(two_classes, caller(role), "202302030207")
    assert view["student_number"] == "202302030207"
    assert view["enrolled"] is True
    assert view["stop_instalments"] is False


def test_the_system_sees_every_student(two_classes: Database) -> None:
    assert handlers.enrolled_student(two_classes, system_caller("aid"), NUMBER)["name"] == "李娜"


def test_a_counselor_sees_only_students_of_their_classes(two_classes: Database) -> None:
    counselor = caller("counselor", "classes", "2023010101")
    assert handlers.enrolled_student(two_classes, counselor, NUMBER)["class_code"] == "2023010101"
    with pytest.raises(Forbidden, match="不在您的数据权限范围内"):
        handlers.enrolled_student(two_classes, counselor, "202302030207")


def test_a_deputy_secretary_sees_only_their_college(two_classes: Database) -> None:
    deputy = caller("deputy_secretary", "college", "02")
    assert handlers.enrolled_student(two_classes, deputy, "202302030207")["college_code"] == "02"
    with pytest.raises(Forbidden, match="不在您的数据权限范围内"):
        handlers.enrolled_student(two_classes, deputy, NUMBER)


@pytest.mark.parametrize("role", ["student", "housing_centre", "it_centre", "academic_affairs",
                                  "authority"])
def test_other_roles_may_not_read_aid_data(two_classes: Database, role: str) -> None:
    with pytest.raises(Forbidden, match="无权执行此操作"):
        handlers.enrolled_student(two_classes, caller(role), NUMBER)


def test_an_unknown_number_is_not_found_for_the_aid_centre(two_classes: Database) -> None:
    with pytest.raises(NotFound, match="在校生库中没有学号"):
        handlers.enrolled_student(two_classes, caller("aid_operator"), "202309090909")


def test_an_unknown_number_is_forbidden_for_scoped_staff(two_classes: Database) -> None:
    # Scoped staff must not learn whether a number outside their scope exists.
    with pytest.raises(Forbidden):
        handlers.enrolled_student(two_classes, caller("counselor", "classes", "2023010101"),
                                  "202309090909")


def test_a_malformed_number_is_invalid(two_classes: Database) -> None:
    with pytest.raises(Invalid, match="学号格式不正确"):
        handlers.enrolled_student(two_classes, caller("aid_operator"), "12-34")


def test_every_view_is_audited_and_refusals_leave_none(two_classes: Database) -> None:
    handlers.enrolled_student(two_classes, caller("aid_auditor"), NUMBER)
    with pytest.raises(Forbidden):
        handlers.enrolled_student(two_classes, caller("counselor", "classes", "2023010101"),
                                  "202302030207")
    [entry] = audit_entries(two_classes, "enrolled.view")
    assert (entry.actor, entry.role, entry.target) == ("aid_auditor01", "aid_auditor", NUMBER)


def test_a_student_who_left_is_shown_as_not_enrolled(two_classes: Database) -> None:
    handlers.on_student_status_changed(two_classes, status_changed(NUMBER, 5, "graduated", left=True))
    view = handlers.enrolled_student(two_classes, caller("aid_operator"), NUMBER)
    assert (view["enrolled"], view["left"], view["stop_instalments"], view["last_change_id"]) == \
        (False, True, True, 5)


def test_health_counts_known_students_and_the_outbox(two_classes: Database) -> None:
    assert handlers.health(two_classes) == {"service": "aid", "status": "ok", "db": "ok",
                                            "outbox_backlog": 0, "students_known": 2}

