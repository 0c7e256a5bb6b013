"""Editing a student's record: direct staff edits (R11), change requests with review (R5, R12),
field policies (R10). Every value goes through the same validation as the import."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import STUDENT, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.outbox import record_event
from services.roster.adapters.orm import ChangeRequest, FieldPolicy, Student
from services.roster.domain import policy as pol
from services.roster.domain.record import FIELD_BY_KEY, GUARDIAN_KEYS, GUARDIAN_SLOTS, check_record
from services.roster.domain.students import mask_national_id
from services.roster.handlers import SEES_FULL_ID, _registered_event
from services.roster.importing import RECORD_KEYS, _stored, code_book

# Fields read copies of other services hold (StudentRegistered): a change is republished.
PUBLISHED = frozenset({"name", "gender"})


def _rules(s: Session) -> dict[str, pol.Policy]:
    overrides = {p.field: pol.Policy(p.field, p.student_access, p.staff_access) for p in s.scalars(select(FieldPolicy))}
    return pol.policies(overrides)


def field_policies(db: Database, caller: Caller) -> list[dict[str, Any]]:
    if caller.role == STUDENT:
        raise Forbidden("学生无权查看字段权限设置")
    with db.reading() as s:
        rules = _rules(s)
    return [{"field": key, "header": FIELD_BY_KEY[key].header, "student": rule.student, "staff": rule.staff,
             "student_label": pol.STUDENT_ACCESS[rule.student], "staff_label": pol.STAFF_ACCESS[rule.staff],
             "key_field": key in pol.KEY_FIELDS, "never_open": key in pol.NEVER_OPEN}
            for key, rule in rules.items()]


def set_field_policy(db: Database, caller: Caller, field: str, student: str, staff: str) -> dict[str, Any]:
    caller.require_role(STUDENT_AFFAIRS)
    problem = pol.policy_problem(field, student, staff)
    if problem:
        raise Invalid(problem)
    with db.transaction() as s:
        before = _rules(s)[field]
        row = s.get(FieldPolicy, field) or FieldPolicy(field=field)
        row.student_access, row.staff_access = student, staff
        row.updated_at, row.updated_by = datetime.now(UTC), caller.username
        s.add(row)
        audit(s, caller, "policy.set", field, {"student": before.student, "staff": before.staff},
              {"student": student, "staff": staff}, chain=True)
    return {"field": field, "student": student, "staff": staff}


def _student_in_scope(s: Session, caller: Caller, number: str, lock: bool = False) -> Student:
    """`lock`: the row locked first (PostgreSQL), so the `student.registered` this write sends is made after
    any other write to the student committed: consumers keep the newest snapshot by its time."""
    student = s.get(Student, number, with_for_update=lock)
    if student is None:
        if caller.role == STUDENT_AFFAIRS or caller.is_system():
            raise NotFound(f"学号 {number} 不存在")
        raise Forbidden(f"学生 {number} 不在您的数据权限范围内")
    caller.require_student(student.student_number, student.college_code, student.class_code)
    return student


def _raw_of(student: Student) -> dict[str, Any]:
    """The stored record as check_record takes it (codes and ISO dates, guardians flattened)."""
    raw: dict[str, Any] = {}
    for key in RECORD_KEYS:
        if key == "guardians":
            continue
        value = getattr(student, key)
        raw[key] = value.isoformat() if isinstance(value, date) else value
    guardians = json.loads(student.guardians) if student.guardians else []
    for n, guardian in zip(GUARDIAN_SLOTS, guardians, strict=False):
        for key in GUARDIAN_KEYS:
            raw[f"guardian{n}_{key}"] = guardian.get(key)
    return raw


def _checked(s: Session, student: Student, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The stored columns after `changes`, or Invalid naming each bad field (only changed ones:
    older records may lack fields that were optional when they were registered)."""
    raw = _raw_of(student)
    raw.update(changes)
    check = check_record(raw, code_book(s))
    touched = set(changes)
    if touched & {"gender", "birth_date", "id_type"}:
        touched.add("national_id")  # R13: the ID number must still agree
    touched |= {f"guardian{n}_name" for n in GUARDIAN_SLOTS if f"guardian{n}_id_number" in changes}
    errors = [e for e in check.errors if e.field in touched]
    if errors:
        raise Invalid("；".join(f"{FIELD_BY_KEY[e.field].header}：{e.message}" for e in errors))
    return _stored(check.values)


def _diff(student: Student, stored: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, date) else value

    return {key: {"before": plain(getattr(student, key)), "after": plain(stored[key])}
            for key in RECORD_KEYS if getattr(student, key) != stored[key]}


def _apply(s: Session, caller: Caller, student: Student, stored: Mapping[str, Any], action: str,
           extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    diff = _diff(student, stored)
    for key in diff:
        setattr(student, key, stored[key])
    student.updated_at = datetime.now(UTC)
    audit(s, caller, action, student.student_number, {k: v["before"] for k, v in diff.items()},
          {**{k: v["after"] for k, v in diff.items()}, **extra}, chain=True)
    if PUBLISHED & set(diff):
        record_event(s, _registered_event(student, caller))  # read copies refresh the name/gender
    return diff


def update_student(db: Database, caller: Caller, number: str, changes: dict[str, Any],
                   reason: str = "") -> dict[str, Any]:
    """Staff in scope: ordinary fields change at once (R11); key fields become a request (R12)."""
    if caller.role == STUDENT:
        raise Forbidden("学生请通过变更申请修改本人信息")
    if not changes:
        raise Invalid("没有要修改的内容")
    with db.transaction() as s:
        student = _student_in_scope(s, caller, number, lock=True)
        plan = pol.plan_changes(caller.role, changes, _rules(s))
        if plan.refused:
            raise Forbidden("；".join(plan.refused.values()))
        if plan.request and not (reason or "").strip():
            raise Invalid("修改关键字段须填写变更原因并提供证明材料说明（R12）")
        stored = _checked(s, student, {**plan.direct, **plan.request})
        applied = {}
        if plan.direct:
            direct = {k: getattr(student, k) for k in RECORD_KEYS}
            for key in plan.direct:
                column = "guardians" if key.startswith("guardian") else key
                direct[column] = stored[column]
            applied = _apply(s, caller, student, direct, "student.update", {"reason": reason})
        request_id = None
        if plan.request:
            request_id = _new_request(s, caller, student, stored, set(plan.request), "key", reason)
    return {"applied": applied, "request_id": request_id}


def submit_change_request(db: Database, caller: Caller, number: str, changes: dict[str, Any],
                          evidence: str = "") -> dict[str, Any]:
    """A student's own changes (R5): counselor review, then student affairs approval."""
    caller.require_role(STUDENT)
    with db.transaction() as s:
        student = _student_in_scope(s, caller, number, lock=True)
        plan = pol.plan_changes(caller.role, changes, _rules(s))
        if plan.refused:
            raise Forbidden("；".join(plan.refused.values()))
        if not plan.request:
            raise Invalid("没有要修改的内容")
        stored = _checked(s, student, plan.request)
        request_id = _new_request(s, caller, student, stored, set(plan.request), "self", evidence)
    return {"request_id": request_id}


def _new_request(s: Session, caller: Caller, student: Student, stored: Mapping[str, Any], fields: set[str],
                 kind: str, evidence: str) -> int | None:
    diff = {k: v for k, v in _diff(student, stored).items()
            if k in fields or (k == "guardians" and any(f.startswith("guardian") for f in fields))}
    if not diff:
        return None
    now = datetime.now(UTC)
    request = ChangeRequest(
        student_number=student.student_number, kind=kind, changes=json.dumps(diff, ensure_ascii=False),
        evidence=evidence or None, state=pol.PENDING_COUNSELOR if kind == "self" else pol.PENDING_FINAL,
        requested_by=caller.username, requester_role=caller.role, reviews="[]",
        college_code=student.college_code, class_code=student.class_code, created_at=now, updated_at=now,
    )
    s.add(request)
    s.flush()
    audit(s, caller, "change_request.submit", student.student_number, None,
          {"request_id": request.id, "changes": diff, "evidence": evidence}, chain=True)
    return request.id


def _request_view(r: ChangeRequest) -> dict[str, Any]:
    changes = json.loads(r.changes)
    return {"id": r.id, "student_number": r.student_number, "kind": r.kind, "state": r.state,
            "state_label": pol.STATE_LABELS.get(r.state, r.state), "evidence": r.evidence,
            "requested_by": r.requested_by, "created_at": r.created_at.isoformat(),
            "changes": [{"field": k, "header": FIELD_BY_KEY[k].header if k in FIELD_BY_KEY else "监护人信息", **v}
                        for k, v in changes.items()],
            "reviews": json.loads(r.reviews)}


def list_change_requests(db: Database, caller: Caller, state: str = "") -> list[dict[str, Any]]:
    query = select(ChangeRequest).order_by(ChangeRequest.id.desc()).limit(500)
    if state:
        query = query.where(ChangeRequest.state == state)
    if not (caller.is_system() or caller.scope.kind == "institution"):
        # The caller's scope, on the request's copy of the student's college and class.
        column = {"college": ChangeRequest.college_code, "classes": ChangeRequest.class_code,
                  "self": ChangeRequest.student_number}.get(caller.scope.kind)
        query = query.where(column.in_(caller.scope.ids) if column is not None else ChangeRequest.id.is_(None))
    with db.reading() as s:
        return [_request_view(r) for r in s.scalars(query)]


def review_change_request(db: Database, caller: Caller, request_id: int, approve: bool,
                          note: str = "") -> dict[str, Any]:
    with db.transaction() as s:
        request = s.get(ChangeRequest, request_id)
        if request is None:
            raise NotFound(f"变更申请 {request_id} 不存在")
        if caller.role not in pol.reviewer_roles(request.state) and not caller.is_system():
            if request.state in (pol.APPROVED, pol.REJECTED):
                raise Conflict(f"变更申请 {request_id} 已处理（{pol.STATE_LABELS[request.state]}）")
            raise Forbidden("您不能审核处于此阶段的申请")
        student = _student_in_scope(s, caller, request.student_number, lock=True)
        if request.requested_by == caller.username:
            raise Forbidden("不能审核本人提交的申请")
        if not approve and not (note or "").strip():
            raise Invalid("驳回时请填写理由")
        state = pol.next_state(request.state, approve)
        reviews = json.loads(request.reviews)
        reviews.append({"by": caller.username, "role": caller.role, "approve": approve, "note": note,
                        "at": datetime.now(UTC).isoformat()})
        request.reviews, request.updated_at = json.dumps(reviews, ensure_ascii=False), datetime.now(UTC)
        if state == pol.APPROVED:
            changes = json.loads(request.changes)
            current = _raw_of(student)
            stale = [k for k, v in changes.items() if k != "guardians" and current.get(k) != v["before"]]
            if stale:
                raise Conflict("申请提交后学籍已被修改（" + "、".join(FIELD_BY_KEY[k].header for k in stale)
                               + "），请驳回后重新申请")
            stored = {k: getattr(student, k) for k in RECORD_KEYS}
            for key, change in changes.items():
                value = change["after"]
                if key in ("birth_date", "expected_graduation") and value:
                    value = date.fromisoformat(value)
                stored[key] = value
            _apply(s, caller, student, stored, "student.update", {"request_id": request.id})
        request.state = state
        audit(s, caller, "change_request.review", request.student_number, None,
              {"request_id": request.id, "approve": approve, "note": note, "state": state}, chain=True)
    return {"request_id": request_id, "state": state, "state_label": pol.STATE_LABELS[state]}


def student_record(db: Database, caller: Caller, number: str) -> dict[str, Any]:
    """The full record (every field with its label, ID numbers masked unless the role needs them),
    the field policies as they apply to the caller, and the open requests."""
    with db.reading() as s:
        student = _student_in_scope(s, caller, number)
        book, rules = code_book(s), _rules(s)
        raw = _raw_of(student)
        requests = [_request_view(r) for r in s.scalars(
            select(ChangeRequest).where(ChangeRequest.student_number == number).order_by(ChangeRequest.id.desc()))]
    full_id = caller.role in SEES_FULL_ID or (caller.role == STUDENT and caller.username == number)
    fields = []
    for key, spec in FIELD_BY_KEY.items():
        rule = rules[key]
        if caller.role == STUDENT and rule.student == "hidden":
            continue
        value = raw.get(key)
        if spec.kind in ("code", "division") and spec.table and value:
            label = book[spec.table].label_of(value)
        else:
            label = value
        if key in ("national_id",) or key.endswith("_id_number"):
            value = label = value if full_id else mask_national_id(value)
        plan = pol.plan_changes(caller.role, {key: "x"}, rules)
        how = "direct" if key in plan.direct else "request" if key in plan.request else "none"
        fields.append({"key": key, "header": spec.header, "value": value, "label": label, "edit": how,
                       "choices": book[spec.table].choices() if spec.kind == "code" and spec.table else []})
    return {"student_number": number, "status": student.status, "fields": fields, "requests": requests}
