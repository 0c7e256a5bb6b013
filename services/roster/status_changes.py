"""学籍异动 use cases (R8, R18): apply a change with evidence, revoke it, the authority's
approval where configured (K-12), the timeline and the evidence files.

Every path that changes a status (this form, the batch sheet, the calendar jobs, clearance,
transfer) goes through `stage_kind`, so the transition table in domain/transitions.py holds
for all of them and every change is published (outbox) with its old and new status.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, AUTHORITY, STUDENT, STUDENT_AFFAIRS, SYSTEM, Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.uploads import Upload, parse_uploads
from services.roster import settings as cfg
from services.roster.adapters.orm import (
    PendingGraduation,
    StatusApplication,
    StatusAttachment,
    StatusChange,
    Student,
)
from services.roster.domain import status as st
from services.roster.domain import transitions as tr
from services.roster.handlers import actor_of, latest_change, publish_status_change, stage_status_change

GRADUATION_KINDS = frozenset({"graduate", "complete", "attendance"})
# The kind each clearance outcome's status is applied as.
KIND_OF_GRADUATION = {tr.KINDS[k].to_status: k for k in GRADUATION_KINDS}


def _effective_at(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def parse_day(text: str | date | None, label: str = "生效日期") -> date:
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text or "").strip())
    except ValueError:
        raise Invalid(f"{label}应为 YYYY-MM-DD 格式的日期") from None


def check_details(kind: tr.Kind, current: str, details: dict[str, Any], today: date) -> dict[str, Any]:
    """What the kind needs beyond the reason; returns the stored form."""
    clean: dict[str, Any] = {}
    if kind.code == "resume" and current == st.MILITARY:
        raw = details.get("discharged_on")
        discharged = parse_day(raw, "退役日期") if raw else None
        problem = tr.military_return_refusal(discharged, today)
        if problem:
            raise Invalid(problem)
        clean["discharged_on"] = discharged.isoformat() if discharged else None
    if kind.code == "suspend" and details.get("until"):
        clean["until"] = parse_day(details["until"], "休学截止日期").isoformat()
    if kind.code in ("transfer_out", "visiting") and details.get("destination"):
        clean["destination"] = str(details["destination"])[:200]
    if kind.code == "go_abroad":  # T3: where to and when, besides the reason
        destination = str(details.get("destination") or "").strip()
        if not destination:
            raise Invalid("出国（境）须填写前往国家或地区")
        clean["destination"] = destination[:200]
        if not str(details.get("leave_on") or "").strip():
            raise Invalid("出国（境）须填写出境日期")
        clean["leave_on"] = parse_day(details["leave_on"], "出境日期").isoformat()
    return clean


def stage_kind(s: Session, student: Student, kind: tr.Kind, *, role: str, reason: str, effective_on: date,
               actor_caller: Caller, evidence: str = "", attachments: int = 0,
               details: dict[str, Any] | None = None) -> StatusChange:
    """Check and stage one change of `kind` (not flushed, not published: see handlers)."""
    try:
        tr.check(kind, student.status, role, reason=reason, evidence=evidence, attachments=attachments)
    except tr.TransitionError as exc:
        raise Invalid(f"学号 {student.student_number}：{exc.message}") from None
    change = stage_status_change(
        s, student, kind.to_status, reason=reason.strip(), effective_at=_effective_at(effective_on),
        actor=actor_of(actor_caller), evidence=evidence.strip() or None)
    change.kind = kind.code
    change.details = json.dumps(details, ensure_ascii=False) if details else None
    return change


def close_pending_graduations(s: Session, numbers: list[str], why: str) -> None:
    """Students who graduated (any path) or left leave the pending-graduation list."""
    if numbers:
        s.execute(update(PendingGraduation)
                  .where(PendingGraduation.student_number.in_(numbers), PendingGraduation.state == "open")
                  .values(state="closed", closed_at=datetime.now(UTC), closed_reason=why))


def _student(s: Session, caller: Caller, number: str, *, lock: bool = False) -> Student:
    query = select(Student).where(Student.student_number == number)
    student = s.scalars(query.with_for_update() if lock else query).first()
    if student is None:
        if caller.role in (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, SYSTEM, AUTHORITY):
            raise NotFound(f"学号 {number} 不存在")
        raise Forbidden(f"学生 {number} 不在您的数据权限范围内")
    if caller.role != AUTHORITY:  # an authority's area covers the institution's students
        caller.require_student(student.student_number, student.college_code, student.class_code)
    return student


def _attach(s: Session, uploads: list[Upload], number: str, caller: Caller, *,
            change_id: int | None = None, application_id: int | None = None) -> None:
    now = datetime.now(UTC)
    for upload in uploads:
        s.add(StatusAttachment(
            change_id=change_id, application_id=application_id, student_number=number,
            filename=upload.filename, content_type=upload.content_type, size=len(upload.data),
            sha256=upload.sha256, data=upload.data,
            uploaded_by=caller.username, uploaded_at=now))


def _commit_change(s: Session, caller: Caller, student: Student, kind: tr.Kind, *, reason: str,
                   effective_on: date, evidence: str, uploads: list[Upload], details: dict[str, Any],
                   role: str, application_id: int | None = None) -> StatusChange:
    before = {"status": student.status}
    change = stage_kind(s, student, kind, role=role, reason=reason, effective_on=effective_on,
                        actor_caller=caller, evidence=evidence, attachments=len(uploads), details=details)
    s.flush()
    publish_status_change(s, change, actor=actor_of(caller), correlation_id=caller.correlation_id)
    _attach(s, uploads, student.student_number, caller, change_id=change.id)
    if application_id is not None:
        for row in s.scalars(select(StatusAttachment).where(StatusAttachment.application_id == application_id)):
            row.change_id = change.id
    if kind.code in GRADUATION_KINDS or st.has_left(kind.to_status):
        close_pending_graduations(s, [student.student_number], f"{kind.label}（异动 {change.id}）")
    audit(s, caller, f"status.{kind.code}", student.student_number, before,
          {"status": kind.to_status, "change_id": change.id, "reason": change.reason,
           "effective_on": effective_on.isoformat(), "evidence": change.evidence,
           "attachments": [u.filename for u in uploads], **details}, chain=True)
    return change


def apply_status_change(db: Database, caller: Caller, student_number: str, kind_code: str,
                        effective_on: str, reason: str, evidence: str = "",
                        attachments: list[dict[str, Any]] | None = None,
                        details: dict[str, Any] | None = None) -> dict[str, Any]:
    """办理异动. Where the authority's approval is configured for the kind and the caller is not
    the authority, the change waits as an application instead."""
    try:
        kind = tr.kind_of(kind_code)
    except tr.TransitionError as exc:
        raise Invalid(exc.message) from None
    if caller.role == STUDENT or not (tr.may_apply(kind, caller.role) or caller.role == AUTHORITY):
        raise Forbidden(f"您的角色不能办理{kind.label}")
    day = parse_day(effective_on)
    uploads = parse_uploads(attachments)
    with db.transaction() as s:
        student = _student(s, caller, student_number, lock=True)
        clean = check_details(kind, student.status, details or {}, date.today())
        needs_approval = tr.needs_authority_approval(kind, cfg.current(s)["authority_approval_kinds"])
        if needs_approval and caller.role not in (AUTHORITY, SYSTEM):
            return _file_application(s, caller, student, kind, day, reason, evidence, uploads, clean)
        role = ACADEMIC_AFFAIRS if caller.role == AUTHORITY else caller.role
        change = _commit_change(s, caller, student, kind, reason=reason, effective_on=day, evidence=evidence,
                                uploads=uploads, details=clean, role=role)
        return {"applied": True, "change_id": change.id, "status": change.new_status,
                "status_label": st.label(change.new_status)}


def _file_application(s: Session, caller: Caller, student: Student, kind: tr.Kind, day: date, reason: str,
                      evidence: str, uploads: list[Upload], details: dict[str, Any]) -> dict[str, Any]:
    try:  # the same checks now, so the authority only sees applications that can apply
        tr.check(kind, student.status, caller.role, reason=reason, evidence=evidence, attachments=len(uploads))
    except tr.TransitionError as exc:
        raise Invalid(f"学号 {student.student_number}：{exc.message}") from None
    pending = s.scalar(select(StatusApplication.id).where(StatusApplication.student_number == student.student_number,
                                                          StatusApplication.state == "pending"))
    if pending is not None:
        raise Conflict(f"学号 {student.student_number} 已有待审批的异动申请（{pending}）")
    application = StatusApplication(
        student_number=student.student_number, kind=kind.code, reason=reason.strip(), effective_on=day,
        evidence=evidence.strip() or None, details=json.dumps(details, ensure_ascii=False) if details else None,
        state="pending", requested_by=caller.username, requester_role=caller.role,
        created_at=datetime.now(UTC))
    s.add(application)
    s.flush()
    _attach(s, uploads, student.student_number, caller, application_id=application.id)
    audit(s, caller, "status.apply_for", student.student_number, None,
          {"application_id": application.id, "kind": kind.code, "reason": application.reason}, chain=True)
    return {"applied": False, "application_id": application.id, "status": student.status,
            "status_label": st.label(student.status)}


def decide_application(db: Database, caller: Caller, application_id: int, approve: bool,
                       note: str = "") -> dict[str, Any]:
    caller.require_role(AUTHORITY)
    with db.transaction() as s:
        application = s.get(StatusApplication, application_id)
        if application is None:
            raise NotFound(f"异动申请 {application_id} 不存在")
        if application.state != "pending":
            raise Conflict(f"异动申请 {application_id} 已处理")
        if not approve and not note.strip():
            raise Invalid("不同意时请填写理由")
        student = _student(s, caller, application.student_number, lock=True)
        application.state = "approved" if approve else "rejected"
        application.decided_by, application.decided_at = caller.username, datetime.now(UTC)
        application.note = note.strip() or None
        result: dict[str, Any] = {"application_id": application.id, "state": application.state}
        if approve:
            change = _commit_change(
                s, caller, student, tr.kind_of(application.kind), reason=application.reason,
                effective_on=application.effective_on, evidence=application.evidence or "", uploads=[],
                details=json.loads(application.details or "{}"), role=application.requester_role,
                application_id=application.id)
            application.change_id = change.id
            result["change_id"] = change.id
        audit(s, caller, "status.decide", application.student_number, {"state": "pending"},
              {"state": application.state, "note": application.note}, chain=True)
        return result


def list_applications(db: Database, caller: Caller, state: str = "pending") -> list[dict[str, Any]]:
    caller.require_role(AUTHORITY, ACADEMIC_AFFAIRS, STUDENT_AFFAIRS)
    with db.reading() as s:
        query = (select(StatusApplication, Student)
                 .join(Student, Student.student_number == StatusApplication.student_number))
        if state:
            query = query.where(StatusApplication.state == state)
        rows = s.execute(query.order_by(StatusApplication.id)).all()
        return [{
            "id": a.id, "student_number": a.student_number, "name": student.name, "kind": a.kind,
            "kind_label": tr.kind_of(a.kind).label, "status_label": st.label(student.status),
            "reason": a.reason, "effective_on": a.effective_on.isoformat(), "evidence": a.evidence,
            "state": a.state, "requested_by": a.requested_by, "created_at": a.created_at.isoformat(),
            "decided_by": a.decided_by, "note": a.note,
        } for a, student in rows]


def revoke_status_change(db: Database, caller: Caller, change_id: int, reason: str) -> dict[str, Any]:
    """Undo an applied change by the same authority: the student returns to the status it replaced,
    published as a revocation so consumers reverse its effects (bed, account)."""
    if not reason.strip():
        raise Invalid("请填写撤销原因")
    with db.transaction() as s:
        change = s.get(StatusChange, change_id)
        if change is None:
            raise NotFound(f"异动 {change_id} 不存在")
        student = _student(s, caller, change.student_number, lock=True)
        latest = latest_change(s, student.student_number)
        revoked = s.scalar(select(StatusChange.id).where(StatusChange.revokes_change_id == change.id)) is not None
        kind = tr.KINDS.get(change.kind) if change.kind else None
        forbidden = None if change.revokes_change_id else tr.revoker_refusal(kind, caller.role)
        if forbidden:
            raise Forbidden(forbidden)
        problem = tr.revocation_refusal(latest is not None and latest.id == change.id, revoked,
                                        change.revokes_change_id is not None)
        if problem:
            raise Conflict(problem)
        before = {"status": student.status}
        undo = stage_status_change(
            s, student, change.old_status, reason=f"撤销异动 {change.id}：{reason.strip()}",
            effective_at=datetime.now(UTC), actor=actor_of(caller), evidence=None, revokes=change)
        s.flush()
        publish_status_change(s, undo, actor=actor_of(caller), correlation_id=caller.correlation_id)
        audit(s, caller, "status.revoke", student.student_number, before,
              {"status": undo.new_status, "revokes_change_id": change.id, "change_id": undo.id,
               "reason": reason.strip()}, chain=True)
        return {"change_id": undo.id, "status": undo.new_status, "status_label": st.label(undo.new_status)}


def status_kinds(caller: Caller) -> list[dict[str, Any]]:
    """The kinds the caller may apply, for the form: from which statuses, to which."""
    return [{"code": k.code, "label": k.label, "to_status": k.to_status, "to_label": st.label(k.to_status),
             "from_statuses": sorted(k.from_statuses), "evidence_required": k.evidence_required,
             "authority_approval": k.authority_approval}
            for k in tr.KINDS.values() if tr.may_apply(k, caller.role) or caller.role == AUTHORITY]


def timeline(db: Database, caller: Caller, student_number: str) -> list[dict[str, Any]]:
    """Every change of one student, oldest first, with its evidence files and whether it was revoked."""
    with db.reading() as s:
        student = _student(s, caller, student_number)
        changes = s.scalars(select(StatusChange).where(StatusChange.student_number == student.student_number)
                            .order_by(StatusChange.id)).all()
        files: dict[int, list[dict[str, Any]]] = {}
        for a in s.execute(select(StatusAttachment.id, StatusAttachment.change_id, StatusAttachment.filename,
                                  StatusAttachment.size)
                           .where(StatusAttachment.student_number == student.student_number)):
            if a.change_id is not None:
                files.setdefault(a.change_id, []).append({"id": a.id, "filename": a.filename, "size": a.size})
        revoked_by = {c.revokes_change_id: c.id for c in changes if c.revokes_change_id}
        return [{
            "id": c.id, "kind": c.kind, "kind_label": tr.kind_label(c.kind)
            or ("撤销" if c.revokes_change_id else st.label(c.new_status)),
            "old_status": c.old_status, "old_label": st.label(c.old_status),
            "new_status": c.new_status, "new_label": st.label(c.new_status), "reason": c.reason,
            "effective_at": c.effective_at.isoformat(), "created_at": c.created_at.isoformat(),
            "actor": c.actor_id, "actor_kind": c.actor_kind, "evidence": c.evidence,
            "details": json.loads(c.details) if c.details else {}, "attachments": files.get(c.id, []),
            "revokes_change_id": c.revokes_change_id, "revoked_by_change_id": revoked_by.get(c.id),
        } for c in changes]


def attachment(db: Database, caller: Caller, attachment_id: int) -> dict[str, Any]:
    with db.reading() as s:
        row = s.get(StatusAttachment, attachment_id)
        if row is None:
            raise NotFound(f"附件 {attachment_id} 不存在")
        if caller.role == STUDENT:
            raise Forbidden("学生不能查看异动证明材料")
        _student(s, caller, row.student_number)
        return {"filename": row.filename, "content_type": row.content_type, "size": row.size,
                "sha256": row.sha256, "data": base64.b64encode(row.data).decode()}
