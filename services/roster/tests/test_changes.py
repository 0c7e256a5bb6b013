"""Field policies (R10), direct staff edits (R11), change requests of students (R5) and of key
fields (R12), per role, against real databases."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from services.common.audit import verify_chain
from services.common.caller import Caller, Scope
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid
from services.common.models import AuditEntry, OutboxMessage
from services.roster import changes, importing
from services.roster.adapters.orm import Student
from services.roster.domain import policy as pol
from services.roster.tests.test_import import IT, REGISTRAR, db, person, workbook  # noqa: F401 - fixture

COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
OTHER_COUNSELOR = Caller("1000005", "1000005", "counselor", Scope("classes", ("2023010102",)))
STUDENT = Caller("s1", "202301010101", "student", Scope("self", ("202301010101",)))
REGISTRAR2 = Caller("1000006", "1000006", "student_affairs", Scope("institution"))


@pytest.fixture
def registered(db: Database) -> Database:  # noqa: F811
    assert importing.import_students(db, IT, workbook([person(1), person(2), person(1, klass="2023010102")]))["ok"]
    return db


def record(database: Database, number: str = "202301010101") -> Student:
    with database.reading() as s:
        student = s.get(Student, number)
        assert student is not None
        s.expunge(student)
        return student


def test_plan_changes_by_role() -> None:
    rules = pol.policies({})
    plan = pol.plan_changes("counselor", {"phone": "13900000000", "name": "新名", "student_number": "1"}, rules)
    assert plan.direct == {"phone": "13900000000"} and plan.request == {"name": "新名"}
    assert "不开放" in plan.refused["student_number"]
    plan = pol.plan_changes("student", {"phone": "1", "ethnicity": "02"}, rules)
    assert plan.request == {"phone": "1"} and plan.kind == "self" and "不允许学生" in plan.refused["ethnicity"]
    required = pol.policies({"phone": pol.Policy("phone", "required", "edit")})
    assert "必填" in pol.plan_changes("student", {"phone": ""}, required).refused["phone"]
    assert pol.plan_changes("housing_centre", {"phone": "1"}, rules).refused
    assert pol.policy_problem("name", "read", "edit") and pol.policy_problem("class_code", "read", "read")
    assert pol.policy_problem("phone", "required", "read") is None


def test_staff_edit_ordinary_fields_directly(registered: Database) -> None:
    result = changes.update_student(registered, COUNSELOR, "202301010101",
                                    {"phone": "13900001111", "guardian2_name": "母亲", "guardian2_relation": "母亲"})
    assert result["request_id"] is None and set(result["applied"]) == {"phone", "guardians"}
    saved = record(registered)
    assert saved.phone == "13900001111"
    assert [g["relation"] for g in json.loads(saved.guardians or "[]")] == ["1", "2"]
    with pytest.raises(Invalid, match="联系电话"):
        changes.update_student(registered, COUNSELOR, "202301010101", {"phone": "123"})
    with pytest.raises(Forbidden):
        changes.update_student(registered, OTHER_COUNSELOR, "202301010101", {"phone": "13900001111"})
    with pytest.raises(Forbidden):
        changes.update_student(registered, STUDENT, "202301010101", {"phone": "13900001111"})
    with registered.reading() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "student.update")).one()
        assert "13800138000" in (entry.before or "") and "13900001111" in (entry.after or "")
        assert verify_chain(s).ok


def test_key_fields_need_a_request_approved_by_student_affairs(registered: Database) -> None:
    with pytest.raises(Invalid, match="变更原因"):
        changes.update_student(registered, COUNSELOR, "202301010101", {"name": "张新"})
    result = changes.update_student(registered, COUNSELOR, "202301010101", {"name": "张新", "phone": "13911112222"},
                                    reason="户口本已更名，附派出所证明")
    assert set(result["applied"]) == {"phone"} and result["request_id"]
    assert record(registered).name != "张新"
    request = changes.list_change_requests(registered, REGISTRAR, pol.PENDING_FINAL)[0]
    assert request["changes"] == [{"field": "name", "header": "姓名", "before": "学生零一", "after": "张新"}]
    with pytest.raises(Forbidden):
        changes.review_change_request(registered, COUNSELOR, request["id"], True)
    approved = changes.review_change_request(registered, REGISTRAR, request["id"], True, "核对无误")
    assert approved["state"] == pol.APPROVED and record(registered).name == "张新"
    with registered.reading() as s:  # read copies elsewhere hear of the new name
        bodies = [json.loads(b) for b in s.scalars(select(OutboxMessage.body).where(
            OutboxMessage.event_type == "student.registered"))]
    assert bodies[-1]["payload"]["name"] == "张新"
    with pytest.raises(Conflict):
        changes.review_change_request(registered, REGISTRAR, request["id"], True)


def test_a_key_change_is_checked_like_any_entry(registered: Database) -> None:
    with pytest.raises(Invalid, match="身份证件号"):  # R13: the ID number no longer agrees
        changes.update_student(registered, COUNSELOR, "202301010101", {"gender": "女"}, reason="登记错误")


def test_student_request_goes_counselor_then_student_affairs(registered: Database) -> None:
    with pytest.raises(Forbidden):
        changes.submit_change_request(registered, STUDENT, "202301010101", {"ethnicity": "回族"})
    with pytest.raises(Forbidden):
        changes.submit_change_request(registered, STUDENT, "202301010102", {"phone": "13700000000"})
    request_id = changes.submit_change_request(registered, STUDENT, "202301010101", {"phone": "13700000000"},
                                               "换号")["request_id"]
    assert [r["id"] for r in changes.list_change_requests(registered, STUDENT)] == [request_id]
    assert changes.list_change_requests(registered, OTHER_COUNSELOR) == []
    with pytest.raises(Forbidden):
        changes.review_change_request(registered, REGISTRAR, request_id, True)  # counselor first
    with pytest.raises(Forbidden):
        changes.review_change_request(registered, OTHER_COUNSELOR, request_id, True)  # not their student
    with pytest.raises(Invalid):
        changes.review_change_request(registered, COUNSELOR, request_id, False, " ")
    assert changes.review_change_request(registered, COUNSELOR, request_id, True)["state"] == pol.PENDING_FINAL
    assert record(registered).phone == "13800138000"
    assert changes.review_change_request(registered, REGISTRAR, request_id, True)["state"] == pol.APPROVED
    assert record(registered).phone == "13700000000"
    reviews = changes.list_change_requests(registered, REGISTRAR, pol.APPROVED)[0]["reviews"]
    assert [r["role"] for r in reviews] == ["counselor", "student_affairs"]


def test_stale_request_is_refused(registered: Database) -> None:
    request_id = changes.submit_change_request(registered, STUDENT, "202301010101", {"phone": "13700000000"})[
        "request_id"]
    changes.review_change_request(registered, COUNSELOR, request_id, True)
    changes.update_student(registered, COUNSELOR, "202301010101", {"phone": "13600000000"})
    with pytest.raises(Conflict):
        changes.review_change_request(registered, REGISTRAR, request_id, True)


def test_field_policies_per_role(registered: Database) -> None:
    with pytest.raises(Forbidden):
        changes.set_field_policy(registered, COUNSELOR, "phone", "read", "edit")
    with pytest.raises(Invalid, match="关键字段"):
        changes.set_field_policy(registered, REGISTRAR, "name", "read", "edit")
    changes.set_field_policy(registered, REGISTRAR, "phone", "read", "read")
    phone = next(p for p in changes.field_policies(registered, COUNSELOR) if p["field"] == "phone")
    assert phone["student_label"] == "只读" and phone["staff_label"] == "只读"
    with pytest.raises(Forbidden):
        changes.update_student(registered, COUNSELOR, "202301010101", {"phone": "13900001111"})
    with pytest.raises(Forbidden):
        changes.submit_change_request(registered, STUDENT, "202301010101", {"phone": "13900001111"})
    changes.set_field_policy(registered, REGISTRAR, "health", "optional", "edit")
    assert changes.submit_change_request(registered, STUDENT, "202301010101", {"health": "一般或较弱"})["request_id"]


def test_own_request_cannot_be_self_approved(registered: Database) -> None:
    request_id = changes.update_student(registered, REGISTRAR, "202301010101", {"name": "张新"}, reason="更名")[
        "request_id"]
    with pytest.raises(Forbidden, match="本人"):
        changes.review_change_request(registered, REGISTRAR, request_id, True)
    assert changes.review_change_request(registered, REGISTRAR2, request_id, True)["state"] == pol.APPROVED


def test_student_record_shows_labels_masks_and_what_each_role_may_change(registered: Database) -> None:
    mine = {f["key"]: f for f in changes.student_record(registered, STUDENT, "202301010101")["fields"]}
    assert mine["ethnicity"]["label"] == "汉族" and mine["ethnicity"]["edit"] == "none"
    assert mine["phone"]["edit"] == "request" and "*" not in mine["national_id"]["value"]
    staff = {f["key"]: f for f in changes.student_record(registered, COUNSELOR, "202301010101")["fields"]}
    assert staff["phone"]["edit"] == "direct" and staff["name"]["edit"] == "request"
    assert staff["student_number"]["edit"] == "none"
    assert "*" in staff["national_id"]["value"] and "*" in staff["guardian1_id_number"]["value"]
    assert "汉族" in staff["ethnicity"]["choices"]
    with pytest.raises(Forbidden):
        changes.student_record(registered, STUDENT, "202301010102")
