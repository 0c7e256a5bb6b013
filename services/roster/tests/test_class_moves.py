"""调班 (R9): who may move whom (domain table), and the use case on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from services.common.audit import verify_chain
from services.common.caller import (
    ACADEMIC_AFFAIRS,
    AID_OPERATOR,
    COUNSELOR,
    DEPUTY_SECRETARY,
    HOUSING_CENTRE,
    STUDENT,
    STUDENT_AFFAIRS,
    SYSTEM,
    Caller,
    Scope,
    system_caller,
)
from services.common.db import Database
from services.common.envelope import parse_envelope
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.events import StudentClassChanged
from services.common.models import AuditEntry, OutboxMessage
from services.common.testing import caller
from services.roster import class_moves, handlers, importing
from services.roster.adapters.orm import ClassMove, OrgUnit, Student
from services.roster.domain import class_moves as rules
from services.roster.domain import status as st
from services.roster.tests.factories import student

# College 01: counselor A holds classes 01 and 02, counselor B class 01 of major 02. College 02: one class.
A1, A2, B3, MATH = "2023010101", "2023010102", "2023010201", "2023020101"
ORPHAN = "2023090101"  # a class whose major is missing from the org tree
COUNSELOR_A = caller(COUNSELOR, "classes", A1, A2)
COUNSELOR_B = caller(COUNSELOR, "classes", B3)
DEPUTY_01 = caller(DEPUTY_SECRETARY, "college", "01")
DEPUTY_02 = caller(DEPUTY_SECRETARY, "college", "02")
OFFICE = caller(STUDENT_AFFAIRS)
SYS = system_caller("test")
LI = f"{A1}01"  # a student of class A1


# --- domain -------------------------------------------------------------------------------------

def scope(kind: str, *ids: str) -> Scope:
    return Scope(kind, ids)  # type: ignore[arg-type]


MINE = scope("classes", A1, A2)
TWO_COLLEGES = scope("classes", A1, MATH)
COLLEGE_01 = scope("college", "01")
BOTH_COLLEGES = scope("college", "01", "02")
ALL = scope("institution")

# role, caller scope, from class, to class → None (allowed) or a part of the refusal
RIGHTS: list[tuple[str, Scope, str, str, str | None]] = [
    (COUNSELOR, MINE, A1, A2, None),
    (COUNSELOR, MINE, A2, A1, None),
    (COUNSELOR, MINE, A1, B3, "党总支副书记"),
    (COUNSELOR, MINE, B3, A1, "不在您的数据权限范围内"),
    (COUNSELOR, MINE, A1, MATH, "学生处"),
    (COUNSELOR, TWO_COLLEGES, A1, MATH, "学生处"),  # both theirs, but across colleges
    (COUNSELOR, COLLEGE_01, A1, A2, "不在您的数据权限范围内"),  # a counselor's scope is by class
    (DEPUTY_SECRETARY, COLLEGE_01, A1, A2, None),
    (DEPUTY_SECRETARY, COLLEGE_01, A1, B3, None),
    (DEPUTY_SECRETARY, COLLEGE_01, A1, MATH, "学生处"),
    (DEPUTY_SECRETARY, BOTH_COLLEGES, A1, MATH, "学生处"),  # across colleges, whatever the scope
    (DEPUTY_SECRETARY, COLLEGE_01, MATH, A1, "不在您的数据权限范围内"),
    (DEPUTY_SECRETARY, scope("classes", A1, A2), A1, A2, "不在您的数据权限范围内"),
    (STUDENT_AFFAIRS, ALL, A1, MATH, None),
    (STUDENT_AFFAIRS, ALL, A1, A2, None),
    (SYSTEM, ALL, MATH, B3, None),
    (ACADEMIC_AFFAIRS, ALL, A1, A2, "教务处"),
    (HOUSING_CENTRE, ALL, A1, A2, "宿管中心"),
    (AID_OPERATOR, ALL, A1, A2, "资助中心经办人"),
    (STUDENT, scope("self", LI), A1, A2, "学生"),
]


@pytest.mark.parametrize(("role", "caller_scope", "old", "new", "refused"), RIGHTS)
def test_who_may_move_whom(role: str, caller_scope: Scope, old: str, new: str, refused: str | None) -> None:
    problem = rules.refusal(role, caller_scope, old, new, old[4:6], new[4:6])
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and refused in problem


@pytest.mark.parametrize(("old_college", "new_college", "one_counselor", "role"), [
    ("01", "01", True, COUNSELOR),
    ("01", "01", False, DEPUTY_SECRETARY),
    ("01", "02", False, STUDENT_AFFAIRS),
    ("01", "02", True, STUDENT_AFFAIRS),
])
def test_required_role(old_college: str, new_college: str, one_counselor: bool, role: str) -> None:
    assert rules.required_role(old_college, new_college, one_counselor=one_counselor) == role


@pytest.mark.parametrize("status", sorted(st.LABELS))
def test_only_students_on_the_register_move(status: str) -> None:
    problem = rules.move_problem(status, A1, A2)
    if status in (st.ENROLLED, st.SUSPENDED, st.VISITING):
        assert problem is None
    else:
        assert problem is not None and st.label(status) in problem


def test_the_same_class_is_no_move() -> None:
    assert rules.move_problem(st.ENROLLED, A1, A1) == f"学生已在班级 {A1}"


def test_the_college_is_found_up_the_org_tree() -> None:
    tree = {"01": ("college", None), "0101": ("major", "01"), A1: ("class", "0101"), "9": ("class", "01"),
            ORPHAN: ("class", "0901"), "x": ("class", "y"), "y": ("major", "x")}
    assert rules.college_of(A1, tree) == "01"
    assert rules.college_of("9", tree) == "01"  # a class straight under its college
    assert rules.college_of(ORPHAN, tree) is None
    assert rules.college_of("x", tree) is None  # a cycle ends the walk


# --- use case on a real database ------------------------------------------------------------------

@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("roster")
    handlers.upsert_org_units(database, SYS, [
        {"code": "01", "name": "计算机学院", "kind": "college"},
        {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
        {"code": "0102", "name": "软件工程", "kind": "major", "parent_code": "01"},
        {"code": A1, "name": "计科2301", "kind": "class", "parent_code": "0101"},
        {"code": A2, "name": "计科2302", "kind": "class", "parent_code": "0101"},
        {"code": B3, "name": "软工2301", "kind": "class", "parent_code": "0102"},
        {"code": "02", "name": "数学学院", "kind": "college"},
        {"code": "0201", "name": "数学与应用数学", "kind": "major", "parent_code": "02"},
        {"code": MATH, "name": "数学2301", "kind": "class", "parent_code": "0201"},
    ])
    with database.transaction() as s:  # data from before the org tree was checked: saving it is refused now
        s.add(OrgUnit(code=ORPHAN, name="无主班级", kind="class", parent_code="0901"))
    importing.register_students(database, SYS, [student(1), student(2), student(1, klass=MATH, gender="2")])
    return database


def where(db: Database, number: str = LI) -> tuple[str, str, str | None]:
    with db.reading() as s:
        row = s.get(Student, number)
        assert row is not None
        return row.class_code, row.college_code, row.major_code


def outbox(db: Database, event_type: str) -> list[dict[str, Any]]:
    with db.reading() as s:
        return [json.loads(r.body) for r in s.scalars(
            select(OutboxMessage).where(OutboxMessage.event_type == event_type).order_by(OutboxMessage.id))]


def moves(db: Database) -> int:
    with db.reading() as s:
        return len(s.scalars(select(ClassMove)).all())


def test_a_counselor_moves_a_student_between_their_own_classes(db: Database) -> None:
    registered_before = len(outbox(db, "student.registered"))
    result = class_moves.move_class(db, COUNSELOR_A, LI, A2, "  学生申请，班主任同意 ")
    assert result["old_class_code"] == A1 and result["new_class_code"] == A2
    assert (result["new_class_name"], result["new_college_name"]) == ("计科2302", "计算机学院")
    assert where(db) == (A2, "01", "0101")

    [event] = outbox(db, "student.class_changed")
    envelope = parse_envelope(event)  # the registered payload model validates it
    assert envelope.correlation_id == COUNSELOR_A.correlation_id
    assert StudentClassChanged.model_validate(envelope.payload) == StudentClassChanged(
        student_number=LI, move_id=result["move_id"], old_class_code=A1, new_class_code=A2,
        old_college_code="01", new_college_code="01", reason="学生申请，班主任同意")
    # The registration snapshot follows, so a stale one on its queue cannot win.
    registered = outbox(db, "student.registered")
    assert len(registered) == registered_before + 1
    assert registered[-1]["payload"]["class_code"] == A2

    with db.reading() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "student.move_class")).one()
        assert (entry.actor, entry.role, entry.target) == (COUNSELOR_A.username, COUNSELOR, LI)
        assert json.loads(entry.before or "{}")["class_code"] == A1
        assert json.loads(entry.after or "{}")["move_id"] == result["move_id"]
        assert verify_chain(s).ok

    [listed] = class_moves.class_moves(db, COUNSELOR_A, LI)
    assert listed["move_id"] == result["move_id"]
    assert (listed["actor_role_label"], listed["reason"]) == ("辅导员", "学生申请，班主任同意")


def test_a_counselor_may_not_move_to_another_counselors_class(db: Database) -> None:
    with pytest.raises(Forbidden, match="党总支副书记"):
        class_moves.move_class(db, COUNSELOR_A, LI, B3, "调整")
    with pytest.raises(Forbidden, match="不在您的数据权限范围内"):
        class_moves.move_class(db, COUNSELOR_B, LI, B3, "调整")
    assert where(db)[0] == A1
    assert moves(db) == 0 and outbox(db, "student.class_changed") == []


def test_a_deputy_secretary_moves_within_the_college_not_across(db: Database) -> None:
    class_moves.move_class(db, DEPUTY_01, LI, B3, "转专业后调班")
    assert where(db) == (B3, "01", "0102")  # the major follows the class
    with pytest.raises(Forbidden, match="学生处"):
        class_moves.move_class(db, DEPUTY_01, LI, MATH, "跨院")
    with pytest.raises(Forbidden):  # nor may the target college's deputy take the student
        class_moves.move_class(db, DEPUTY_02, LI, MATH, "跨院")
    assert where(db)[0] == B3
    assert len(outbox(db, "student.class_changed")) == 1


def test_student_affairs_moves_across_colleges_and_the_scope_follows(db: Database) -> None:
    result = class_moves.move_class(db, OFFICE, LI, MATH, "转专业")
    assert where(db) == (MATH, "02", "0201")
    [event] = outbox(db, "student.class_changed")
    assert (event["payload"]["old_college_code"], event["payload"]["new_college_code"]) == ("01", "02")
    # The student is now the other college's: the old deputy and counselor see it no longer.
    for former in (DEPUTY_01, COUNSELOR_A):
        with pytest.raises(Forbidden):
            class_moves.class_moves(db, former, LI)
    assert [m["move_id"] for m in class_moves.class_moves(db, DEPUTY_02, LI)] == [result["move_id"]]
    # And the history keeps each move in order.
    class_moves.move_class(db, SYS, LI, A1, "撤回调班")
    assert [m["new_class_code"] for m in class_moves.class_moves(db, OFFICE, LI)] == [MATH, A1]


@pytest.mark.parametrize(("to_class", "reason", "message"), [
    (A1, "调整", "学生已在班级"),
    ("2023010199", "调整", "不存在"),
    ("0101", "调整", "不存在"),  # a major is no class
    (ORPHAN, "调整", "不属于任何学院"),
    (A2, "   ", "请填写调班原因"),
    (A2, "长" * 501, "不能超过"),
])
def test_bad_moves_change_nothing(db: Database, to_class: str, reason: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        class_moves.move_class(db, OFFICE, LI, to_class, reason)
    assert where(db)[0] == A1 and moves(db) == 0


def test_a_student_who_left_keeps_their_class(db: Database) -> None:
    with db.transaction() as s:
        row = s.get(Student, LI)
        assert row is not None
        row.status = st.WITHDRAWN
    with pytest.raises(Invalid, match="退学"):
        class_moves.move_class(db, OFFICE, LI, A2, "调整")
    with db.transaction() as s:
        row = s.get(Student, LI)
        assert row is not None
        row.status = st.SUSPENDED  # a suspended student keeps a place in a class
    class_moves.move_class(db, OFFICE, LI, A2, "复学后编入新班")
    assert where(db)[0] == A2


def test_unknown_numbers_and_other_roles(db: Database) -> None:
    with pytest.raises(NotFound):
        class_moves.move_class(db, OFFICE, "202301019999", A2, "调整")
    with pytest.raises(Forbidden):  # a scoped caller cannot probe which numbers exist
        class_moves.move_class(db, COUNSELOR_A, "202301019999", A2, "调整")
    with pytest.raises(Forbidden):
        class_moves.class_moves(db, COUNSELOR_A, "202301019999")
    with pytest.raises(Forbidden, match="教务处"):
        class_moves.move_class(db, caller(ACADEMIC_AFFAIRS), LI, A2, "调整")
    own = Caller(LI, LI, STUDENT, Scope("self", (LI,)))
    with pytest.raises(Forbidden):
        class_moves.move_class(db, own, LI, A2, "调整")
    assert class_moves.class_moves(db, own, LI) == []  # students read their own moves
    assert moves(db) == 0
