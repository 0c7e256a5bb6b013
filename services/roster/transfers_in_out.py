"""Transfers between institutions, roster's side (T1, T2, T6, R6): what the transfer service asks of
the register through its roster port (services/transfer/roster_port.py).

- `transfer_identity`: the fields an incoming request is matched against, with the 全国学籍号.
- `transfer_record`: the record sent to the receiving institution: the register fields as the export
  has them (codes, not labels), the status history and (none kept yet) rewards and sanctions.
- `admit_transfer`: the receiving side creates the student in the class joined, with a new number
  (R6) and the national student id kept. The student's first change is of kind `transfer_in`
  (转入) from `transferred_out` to `enrolled`: it says where the student came from (转出 elsewhere),
  and undoing it (the system only: no table kind) would leave the student off the register here.
  `student.registered` is published first, so identity opens the account and housing learns of the
  student; the change follows as every change does. Idempotent by transfer id (`transfer_admissions`).
- `mark_transferred_out`: the sending side's status change, kind `transfer_out`, through the same
  staging as every change (the system's role, evidence "转学 <transfer_id>"); idempotent.
- `class_info`: a class with its major and college (the inflow side's target class, T7's approvers).

The national student id: kept in `students.national_student_id` when the student came by transfer;
otherwise "G" + the ID number, as the national register builds it (domain/transfers.py).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, STUDENT, STUDENT_AFFAIRS, SYSTEM, Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.outbox import record_event
from services.roster.adapters.orm import OrgUnit, StatusChange, Student, TransferAdmission
from services.roster.domain import status as st
from services.roster.domain import transfers as rules
from services.roster.domain import transitions as tr
from services.roster.domain.class_moves import college_of
from services.roster.domain.record import FIELD_BY_KEY
from services.roster.handlers import (
    _names,
    _registered_event,
    actor_of,
    publish_status_change,
    stage_status_change,
)
from services.roster.importing import RECORD_KEYS, _stored, code_book
from services.roster.status_changes import close_pending_graduations, stage_kind

# Matching and the record are the transfer service's (as the system) and the offices that handle transfers.
READERS = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
ADMITTERS = (STUDENT_AFFAIRS,)
MAX_TRANSFER_ID = 64
MAX_NATIONAL_STUDENT_ID = 32


def _evidence(transfer_id: str) -> str:
    return f"转学 {transfer_id}"


def _transfer_id(value: Any) -> str:
    text = str(value or "").strip()
    if not text or len(text) > MAX_TRANSFER_ID:
        raise Invalid("转学编号无效")
    return text


def _national_student_id(student: Student) -> str:
    return rules.national_student_id(student.national_student_id, student.national_id, student.student_number)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def transfer_identity(db: Database, caller: Caller, student_number: str) -> dict[str, Any] | None:
    """What an incoming request is matched against (name, birth date, ID number), or None when the
    number is unknown (the readers are institution-wide: nothing to hide)."""
    caller.require_role(*READERS)
    with db.reading() as s:
        student = s.get(Student, str(student_number or "").strip())
        if student is None:
            return None
        return {
            "student_number": student.student_number, "name": student.name, "gender": student.gender,
            "birth_date": _iso(student.birth_date), "id_type": student.id_type or "1",
            "id_number": student.national_id, "national_student_id": _national_student_id(student),
            "status": student.status, "college_code": student.college_code, "class_code": student.class_code,
        }


def transfer_record(db: Database, caller: Caller, student_number: str) -> dict[str, Any]:
    """The record that moves with the student (T1, T6): register fields (codes), status history,
    rewards and sanctions (the register keeps none yet: an empty list)."""
    caller.require_role(*READERS)
    with db.reading() as s:
        student = s.get(Student, str(student_number or "").strip())
        if student is None:
            raise NotFound(f"学号 {student_number} 不存在")
        record: dict[str, Any] = {k: _iso(getattr(student, k)) for k in RECORD_KEYS if k != "guardians"}
        record["guardians"] = json.loads(student.guardians) if student.guardians else []
        names = _names(s)
        changes = s.scalars(select(StatusChange).where(StatusChange.student_number == student.student_number)
                            .order_by(StatusChange.id)).all()
        record.update({
            "national_student_id": _national_student_id(student),
            "status": student.status, "grade": student.grade,
            "class_name": names.get(student.class_code, ""), "college_name": names.get(student.college_code, ""),
            "major_name": names.get(student.major_code or "", ""),
            "status_history": [{
                "kind": c.kind, "kind_label": tr.kind_label(c.kind) or ("撤销" if c.revokes_change_id else None),
                "old_status": c.old_status, "new_status": c.new_status, "reason": c.reason,
                "effective_at": c.effective_at.isoformat(), "evidence": c.evidence,
                "details": json.loads(c.details) if c.details else {}, "revokes": c.revokes_change_id is not None,
            } for c in changes],
            "rewards_and_sanctions": [],
        })
        return record


def admit_transfer(db: Database, caller: Caller, transfer_id: str, record: dict[str, Any], class_code: str,
                   national_student_id: str) -> str:
    """Create the transferred-in student in `class_code`; returns the new student number. The same
    transfer admitted again returns the number given the first time and changes nothing."""
    caller.require_role(*ADMITTERS)
    transfer_id = _transfer_id(transfer_id)
    if not isinstance(record, dict):
        raise Invalid("转入学籍记录格式不正确")
    national_student_id = str(national_student_id or "").strip().upper()
    if len(national_student_id) > MAX_NATIONAL_STUDENT_ID:
        raise Invalid(f"全国学籍号不能超过{MAX_NATIONAL_STUDENT_ID}个字符")
    class_code = str(class_code or "").strip()
    with db.reading() as s:
        book = code_book(s)
    with db.transaction() as s:
        # The class row locked: admissions into one class take seats one after another.
        unit = s.scalars(select(OrgUnit).where(OrgUnit.code == class_code, OrgUnit.kind == "class")
                         .with_for_update()).first()
        done = s.get(TransferAdmission, transfer_id)
        if done is not None:
            return done.student_number
        if unit is None:
            raise Invalid(f"班级 {class_code} 不存在")
        taken = s.scalars(select(Student.student_number).where(Student.student_number.startswith(class_code)))
        number = rules.next_student_number(class_code, taken)
        if number is None:
            raise Conflict(f"班级 {class_code} 的学号序号已用完，请选择其他班级")
        admission = rules.check_admission(rules.raw_from_record(record, student_number=number, class_code=class_code),
                                          book, classes={class_code: unit.parent_code})
        if admission.refusing:
            raise Invalid("转入学籍记录不能建立：" + "；".join(
                f"{FIELD_BY_KEY[e.field].header if e.field in FIELD_BY_KEY else e.field}：{e.message}"
                for e in admission.refusing))
        values = _stored(admission.values)
        if values["national_id"]:
            owner = s.scalar(select(Student.student_number).where(Student.national_id == values["national_id"]))
            if owner is not None:
                raise Conflict(f"身份证件号与在册学生 {owner} 相同，不能再建立学籍（R14 问题学籍，请核查）")
        now = datetime.now(UTC)
        # Arriving by transfer is reporting here: the welcome job must not mark the student 未报到 (R4).
        student = Student(**values, status=st.ENROLLED, created_at=now, updated_at=now, reported_at=now,
                          national_student_id=national_student_id or None)
        s.add(student)
        s.flush()
        s.add(TransferAdmission(transfer_id=transfer_id, student_number=number, admitted_by=caller.username,
                                admitted_at=now))
        _record_transfer_in(s, caller, student, transfer_id, admission.dropped)
        return number


def _record_transfer_in(s: Session, caller: Caller, student: Student, transfer_id: str, dropped: list[str]) -> None:
    actor = actor_of(caller)
    record_event(s, _registered_event(student, caller))
    change = stage_status_change(s, student, st.ENROLLED, reason=f"转入：{_evidence(transfer_id)}",
                                 effective_at=student.created_at, actor=actor, evidence=_evidence(transfer_id))
    change.old_status = st.TRANSFERRED_OUT  # from 转出 at the sending institution (see the module's note)
    change.kind = tr.TRANSFER_IN
    details = {"transfer_id": transfer_id, **({"dropped_fields": dropped} if dropped else {})}
    change.details = json.dumps(details, ensure_ascii=False)
    s.flush()
    publish_status_change(s, change, actor=actor, correlation_id=caller.correlation_id)
    audit(s, caller, "student.transfer_in", student.student_number, None,
          {**{k: _iso(getattr(student, k)) for k in ("name", "class_code", "college_code", "national_student_id")},
           "change_id": change.id, **details}, chain=True)


def mark_transferred_out(db: Database, caller: Caller, transfer_id: str, student_number: str,
                         reason: str) -> dict[str, Any]:
    """The sending side, once the record went: status 转出 (kind transfer_out); the bed and the account
    follow by the event. A student already 转出 is left alone (a repeated call changes nothing)."""
    caller.require_role()  # the transfer service only: people apply 转出 through the status change form
    transfer_id = _transfer_id(transfer_id)
    with db.transaction() as s:
        student = s.scalars(select(Student).where(Student.student_number == str(student_number or "").strip())
                            .with_for_update()).first()
        if student is None:
            raise NotFound(f"学号 {student_number} 不存在")
        if student.status == st.TRANSFERRED_OUT:
            return {"student_number": student.student_number, "status": student.status, "changed": False,
                    "change_id": None}
        before = {"status": student.status}
        details = {"transfer_id": transfer_id}
        change = stage_kind(s, student, tr.kind_of("transfer_out"), role=SYSTEM,
                            reason=str(reason or "").strip() or _evidence(transfer_id),
                            effective_on=datetime.now(UTC).date(), actor_caller=caller,
                            evidence=_evidence(transfer_id), details=details)
        s.flush()
        publish_status_change(s, change, actor=actor_of(caller), correlation_id=caller.correlation_id)
        close_pending_graduations(s, [student.student_number], f"转出（异动 {change.id}）")
        audit(s, caller, "status.transfer_out", student.student_number, before,
              {"status": change.new_status, "change_id": change.id, "reason": change.reason,
               "evidence": change.evidence, **details}, chain=True)
        return {"student_number": student.student_number, "status": change.new_status, "changed": True,
                "change_id": change.id}


def class_info(db: Database, caller: Caller, class_code: str) -> dict[str, Any] | None:
    """A class, its major and college, or None when there is no such class (org data: any staff)."""
    if caller.role == STUDENT:
        raise Forbidden("学生不能查询班级信息")
    with db.reading() as s:
        tree = {code: (kind, parent) for code, kind, parent in s.execute(
            select(OrgUnit.code, OrgUnit.kind, OrgUnit.parent_code))}
        code = str(class_code or "").strip()
        kind, parent = tree.get(code, ("", None))
        if kind != "class":
            return None
        names = _names(s)
        major = parent if parent is not None and tree.get(parent, ("", None))[0] == "major" else None
        college = college_of(code, tree)
        return {"class_code": code, "class_name": names.get(code, ""), "major_code": major,
                "major_name": names.get(major or "", ""), "college_code": college,
                "college_name": names.get(college or "", "")}
