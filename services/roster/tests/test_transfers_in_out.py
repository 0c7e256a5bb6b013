"""Transfers between institutions, roster's side (T1–T3, R6): the rules as plain code, then the use cases
the transfer service calls through its port, and 出国（境）, against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.audit import verify_chain
from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import OutboxMessage
from services.roster import handlers, importing, status_changes, transfers_in_out
from services.roster.adapters.orm import StatusChange, Student, TransferAdmission
from services.roster.domain import transfers as rules
from services.roster.domain.codes import CodeBook
from services.roster.tests.factories import national_id
from services.roster.tests.test_import import IT, REGISTRAR, person, workbook

SYSTEM = system_caller("transfer")
ACADEMIC = Caller("1000007", "1000007", "academic_affairs", Scope("institution"))
AUTHORITY = Caller("2000001", "2000001", "authority", Scope("area", ("110108",)))
COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
A = "202301010101"  # at the sending institution
TARGET = "2023010102"  # the class joined at the receiving institution
ORG = [
    {"code": "01", "name": "计算机学院", "kind": "college"},
    {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
    {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
    {"code": "2023010102", "name": "计科2302", "kind": "class", "parent_code": "0101"},
]


# ---- plain rules -----------------------------------------------------------------------------------------


def test_a_new_number_takes_the_next_seat_of_the_class_and_never_reuses_one() -> None:
    assert rules.next_student_number(TARGET, []) == "202301010201"
    taken = ["202301010201", "202301010205", "202301010103", "2023010102XY"]
    assert rules.next_student_number(TARGET, taken) == "202301010206"
    assert rules.next_student_number(TARGET, [f"{TARGET}99", f"{TARGET}01"]) == "202301010202"
    assert rules.next_student_number(TARGET, [f"{TARGET}{n:02d}" for n in range(1, 100)]) is None


def test_the_national_student_id_is_kept_else_built_from_the_id_number() -> None:
    assert rules.national_student_id("G110101200501010019", "11010120050101001X", A) == "G110101200501010019"
    assert rules.national_student_id(None, "11010120050101001x", A) == "G11010120050101001X"
    assert rules.national_student_id(None, None, A) == "L" + A


def received(**changes: Any) -> dict[str, Any]:
    """A record as another institution sends it: codes, its own number and class, guardians as a list."""
    record: dict[str, Any] = {
        "student_number": "201901020304", "class_code": "2019010203", "college_code": "01", "major_code": "0102",
        "exam_number": "23110101120001", "name": "张三", "gender": "1", "birth_date": "2005-03-14", "id_type": "1",
        "national_id": national_id(date(2005, 3, 14), "1", seq=300), "ethnicity": "01", "entry_month": "2023-09",
        "phone": "13800138000",
        "guardians": [{"name": "张父", "relation": "父亲", "id_type": "1",
                       "id_number": national_id(date(1975, 1, 1), "1", seq=7), "phone": "13900139000"}],
        "status_history": [{"kind": "suspend"}], "rewards_and_sanctions": [],
    }
    record.update(changes)
    return record


def check(record: dict[str, Any]) -> rules.Admission:
    raw = rules.raw_from_record(record, student_number=f"{TARGET}03", class_code=TARGET)
    return rules.check_admission(raw, CodeBook.standard(), classes={TARGET: "0101"})


def test_a_received_record_is_checked_like_an_import_row_under_our_number() -> None:
    admission = check(received())
    assert admission.refusing == [] and admission.dropped == []
    values = admission.values
    assert (values["student_number"], values["class_code"], values["college_code"], values["major_code"]) == \
        (f"{TARGET}03", TARGET, "01", "0101")
    assert values["birth_date"] == date(2005, 3, 14) and values["ethnicity"] == "01"
    assert values["guardians"][0]["relation"] == "1"  # the label resolved to its code, as in an import


def test_missing_fields_are_tolerated_bad_ones_left_empty_and_identity_errors_refuse() -> None:
    sparse = check({k: v for k, v in received().items() if k not in ("ethnicity", "entry_month", "guardians")})
    assert sparse.refusing == [] and sparse.dropped == [] and sparse.values["ethnicity"] is None
    messy = check(received(phone="12345", ethnicity="火星族",
                           guardians=[{"name": "张父", "id_number": "110101197501010000"}]))
    assert messy.refusing == [] and messy.dropped == ["ethnicity", "guardian1", "phone"]
    assert (messy.values["phone"], messy.values["ethnicity"], messy.values["guardians"]) == (None, None, [])
    bad_id = check(received(national_id="110101200503140000"))
    assert [e.field for e in bad_id.refusing] == ["national_id"]
    no_name = check(received(name=""))
    assert [e.field for e in no_name.refusing] == ["name"]
    no_document = check(received(id_type="9", national_id=None, guardians=[]))
    assert [e.field for e in no_document.refusing] == ["guardian1_id_number"]


# ---- use cases -----------------------------------------------------------------------------------------


def institution(migrated_db: Any, *rows: dict[str, Any]) -> Database:
    db = migrated_db("roster")
    handlers.upsert_org_units(db, SYSTEM, ORG)
    if rows:
        assert importing.import_students(db, IT, workbook(list(rows)))["ok"]
    return db


@pytest.fixture
def sender(migrated_db: Any) -> Database:
    return institution(migrated_db, person(1), person(2))


@pytest.fixture
def receiver(migrated_db: Any) -> Database:
    return institution(migrated_db, person(1, klass=TARGET), person(2, klass=TARGET))


def events(db: Database, event_type: str) -> list[dict[str, Any]]:
    with db.reading() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.event_type == event_type)
                         .order_by(OutboxMessage.id))
        return [json.loads(r.body)["payload"] for r in rows]


def student(db: Database, number: str) -> Student:
    with db.reading() as s:
        found = s.get(Student, number)
        assert found is not None
        return found


def test_a_student_moves_from_one_register_to_the_other(sender: Database, receiver: Database) -> None:
    identity = transfers_in_out.transfer_identity(sender, SYSTEM, A)
    assert identity is not None
    expected_id = person(1)["national_id"]
    assert identity == {
        "student_number": A, "name": person(1)["name"], "gender": "1", "birth_date": "2005-03-14", "id_type": "1",
        "id_number": expected_id, "national_student_id": "G" + expected_id, "status": "enrolled",
        "college_code": "01", "class_code": "2023010101"}
    assert transfers_in_out.transfer_identity(sender, SYSTEM, "202301019999") is None
    status_changes.apply_status_change(sender, ACADEMIC, A, "suspend", "2026-09-01", "因病", "诊断书")
    record = transfers_in_out.transfer_record(sender, SYSTEM, A)
    assert (record["ethnicity"], record["id_type"], record["class_code"]) == ("01", "1", "2023010101")  # codes
    assert record["guardians"][0]["name"] == "家长" and record["rewards_and_sanctions"] == []
    assert [(h["kind"], h["new_status"]) for h in record["status_history"]] == [("suspend", "suspended")]
    json.dumps(record, ensure_ascii=False)  # it travels as JSON

    # the sending side: 转出 once the record went; a repeated call changes nothing
    done = transfers_in_out.mark_transferred_out(sender, SYSTEM, "t-1", A, "转学至外校")
    assert done["changed"] and student(sender, A).status == "transferred_out"
    again = transfers_in_out.mark_transferred_out(sender, SYSTEM, "t-1", A, "转学至外校")
    assert again == {"student_number": A, "status": "transferred_out", "changed": False, "change_id": None}
    [event] = [e for e in events(sender, "student.status_changed") if e["new_status"] == "transferred_out"]
    assert (event["old_status"], event["left"], event["change_id"]) == ("suspended", True, done["change_id"])
    with sender.reading() as s:
        change = s.get(StatusChange, done["change_id"])
        assert change is not None and (change.kind, change.evidence, change.actor_id) == \
            ("transfer_out", "转学 t-1", SYSTEM.username)
        assert json.loads(change.details or "{}") == {"transfer_id": "t-1"}
        assert verify_chain(s).ok

    # the receiving side: a new number in the class joined, the national student id kept
    before = len(events(receiver, "student.registered"))
    number = transfers_in_out.admit_transfer(receiver, SYSTEM, "t-1", record, TARGET, "G" + expected_id)
    assert number == f"{TARGET}03"
    admitted = student(receiver, number)
    assert (admitted.name, admitted.national_id, admitted.class_code, admitted.college_code, admitted.status) == \
        (person(1)["name"], expected_id, TARGET, "01", "enrolled")
    assert admitted.national_student_id == "G" + expected_id and admitted.reported_at is not None
    assert json.loads(admitted.guardians or "[]")[0]["name"] == "家长" and admitted.ethnicity == "01"
    registered = events(receiver, "student.registered")
    assert len(registered) == before + 1 and registered[-1]["student_number"] == number
    [arrived] = [e for e in events(receiver, "student.status_changed") if e["student_number"] == number]
    assert (arrived["old_status"], arrived["new_status"], arrived["left"]) == ("transferred_out", "enrolled", False)
    [entry] = status_changes.timeline(receiver, REGISTRAR, number)
    assert (entry["kind"], entry["kind_label"], entry["evidence"]) == ("transfer_in", "转入", "转学 t-1")
    assert transfers_in_out.transfer_identity(receiver, REGISTRAR, number)["national_student_id"] == "G" + expected_id
    # the same transfer again: the same number, nothing new
    assert transfers_in_out.admit_transfer(receiver, SYSTEM, "t-1", record, TARGET, "G" + expected_id) == number
    assert len(events(receiver, "student.registered")) == before + 1
    with receiver.reading() as s:
        assert s.scalar(select(func.count()).select_from(TransferAdmission)) == 1
        assert verify_chain(s).ok


def test_an_admission_that_cannot_be_made_changes_nothing(receiver: Database) -> None:
    with pytest.raises(Invalid, match="身份证件号"):
        transfers_in_out.admit_transfer(receiver, SYSTEM, "t-2", received(national_id="110101200503140000"),
                                        TARGET, "G1")
    with pytest.raises(Invalid, match="班级"):
        transfers_in_out.admit_transfer(receiver, SYSTEM, "t-2", received(), "2023019999", "G1")
    with pytest.raises(Conflict, match="在册学生"):  # the same person is on this register already (R14)
        transfers_in_out.admit_transfer(receiver, SYSTEM, "t-2", received(national_id=person(1, klass=TARGET)[
            "national_id"], birth_date="2005-03-14", gender="1"), TARGET, "G1")
    with pytest.raises(Forbidden):
        transfers_in_out.admit_transfer(receiver, ACADEMIC, "t-2", received(), TARGET, "G1")
    with pytest.raises(Invalid, match="转学编号"):
        transfers_in_out.admit_transfer(receiver, SYSTEM, " ", received(), TARGET, "G1")
    with receiver.reading() as s:
        assert s.scalar(select(func.count()).select_from(Student)) == 2
    # a record with a bad optional value still admits; what was left out is kept with the change
    number = transfers_in_out.admit_transfer(receiver, REGISTRAR, "t-3", received(phone="12345"), TARGET, "")
    assert student(receiver, number).phone is None and student(receiver, number).national_student_id is None
    [entry] = status_changes.timeline(receiver, REGISTRAR, number)
    assert entry["details"] == {"transfer_id": "t-3", "dropped_fields": ["phone"]}


def test_who_may_use_the_transfer_port(sender: Database) -> None:
    with pytest.raises(Forbidden):
        transfers_in_out.transfer_record(sender, COUNSELOR, A)
    with pytest.raises(Forbidden):
        transfers_in_out.transfer_identity(sender, COUNSELOR, A)
    with pytest.raises(Forbidden):  # people apply 转出 through the status change form
        transfers_in_out.mark_transferred_out(sender, ACADEMIC, "t-1", A, "转学")
    with pytest.raises(NotFound):
        transfers_in_out.transfer_record(sender, ACADEMIC, "202301019999")
    with pytest.raises(NotFound):
        transfers_in_out.mark_transferred_out(sender, SYSTEM, "t-1", "202301019999", "转学")
    status_changes.apply_status_change(sender, ACADEMIC, A, "death", "2026-11-20", "病故", "死亡证明")
    with pytest.raises(Invalid, match="不能办理转出"):
        transfers_in_out.mark_transferred_out(sender, SYSTEM, "t-1", A, "转学")


def test_class_info(sender: Database) -> None:
    assert transfers_in_out.class_info(sender, SYSTEM, TARGET) == {
        "class_code": TARGET, "class_name": "计科2302", "major_code": "0101", "major_name": "计算机科学与技术",
        "college_code": "01", "college_name": "计算机学院"}
    assert transfers_in_out.class_info(sender, SYSTEM, "0101") is None  # a major, not a class
    assert transfers_in_out.class_info(sender, COUNSELOR, "2099999999") is None
    with pytest.raises(Forbidden):
        transfers_in_out.class_info(sender, Caller(A, A, "student", Scope("self", (A,))), TARGET)


def test_going_abroad_always_waits_for_the_authority(sender: Database) -> None:
    details = {"destination": "新加坡", "leave_on": "2026-12-01"}
    with pytest.raises(Invalid, match="国家或地区"):
        status_changes.apply_status_change(sender, ACADEMIC, A, "go_abroad", "2026-11-20", "随父母出国", "护照",
                                           details={"leave_on": "2026-12-01"})
    with pytest.raises(Invalid, match="出境日期"):
        status_changes.apply_status_change(sender, ACADEMIC, A, "go_abroad", "2026-11-20", "随父母出国", "护照",
                                           details={"destination": "新加坡"})
    # no setting asks for the authority's approval, yet 出国（境） waits for it
    pending = status_changes.apply_status_change(sender, ACADEMIC, A, "go_abroad", "2026-11-20", "随父母出国",
                                                 "护照", details=details)
    assert pending["applied"] is False and student(sender, A).status == "enrolled"
    [application] = status_changes.list_applications(sender, AUTHORITY)
    assert application["kind_label"] == "出国（境）"
    decided = status_changes.decide_application(sender, AUTHORITY, application["id"], True, "同意")
    assert student(sender, A).status == "withdrawn"
    [event] = events(sender, "student.status_changed")
    assert (event["new_status"], event["left"]) == ("withdrawn", True)  # bed released, account deactivated
    [entry] = status_changes.timeline(sender, ACADEMIC, A)
    assert (entry["id"], entry["kind_label"], entry["details"]) == (decided["change_id"], "出国（境）", details)
    # the authority itself applies it at once
    other = "202301010102"
    done = status_changes.apply_status_change(sender, AUTHORITY, other, "go_abroad", "2026-11-20", "出国留学",
                                              "录取通知书", details=details)
    assert done["applied"] and student(sender, other).status == "withdrawn"
    kinds = {k["code"]: k for k in status_changes.status_kinds(ACADEMIC)}
    assert kinds["go_abroad"]["authority_approval"] and not kinds["withdraw"]["authority_approval"]
