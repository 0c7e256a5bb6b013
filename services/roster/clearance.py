"""Roster use cases for the clearance system's events (clearance-events.md).

Every received event is kept in `clearance_events` with its fate, in the same
transaction as its effect, so a repeated `event_id` has no further effect and nothing
is ever dropped: unknown students, invalid bodies and revocations that cannot apply are
listed for staff, who re-process them once the cause is fixed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.envelope import Actor
from services.common.errors import Invalid, NotFound
from services.roster.adapters.orm import ClearanceEvent, StatusChange, Student
from services.roster.domain import status as st
from services.roster.domain.clearance import (
    ClearanceCompleted,
    ClearanceInvalid,
    ClearanceRevoked,
    event_id_of,
    identity_mismatch,
    parse,
)
from services.roster.handlers import change_status, latest_change

CLEARANCE = Actor(kind="external", id="clearance", name="离校系统")

APPLIED = "applied"
NO_CHANGE = "no_change"
UNMATCHED = "unmatched"
INVALID = "invalid"
CONFLICT = "conflict"
WITHDRAWN = "withdrawn"  # revoked before it could be applied
REVOKED = "revoked"      # applied, then undone by a revocation
RESOLVED = "resolved"    # closed by staff
OPEN_STATES = (UNMATCHED, INVALID, CONFLICT)

STATE_LABELS = {
    APPLIED: "已执行", NO_CHANGE: "无需变更", UNMATCHED: "未匹配", INVALID: "格式错误",
    CONFLICT: "需人工处理", WITHDRAWN: "已撤销未执行", REVOKED: "已撤销", RESOLVED: "已关闭",
}


def receive(db: Database, routing_key: str, body: Any) -> str:
    """Record and apply one clearance event; returns its state ('duplicate' if seen)."""
    event_id = event_id_of(body)
    now = datetime.now(UTC)
    with db.transaction() as s:
        if event_id and s.scalar(select(ClearanceEvent.id).where(ClearanceEvent.event_id == event_id)):
            return "duplicate"
        row = ClearanceEvent(event_id=event_id, routing_key=routing_key,
                             body=json.dumps(body, ensure_ascii=False, default=str),
                             state=UNMATCHED, attempts=1, received_at=now, updated_at=now)
        s.add(row)
        s.flush()  # a concurrent duplicate fails here on the unique event_id
        _process(s, row)
        return row.state


def _process(s: Session, row: ClearanceEvent) -> None:
    row.updated_at = datetime.now(UTC)
    row.problem = None
    try:
        event = parse(row.routing_key, json.loads(row.body))
    except ClearanceInvalid as exc:
        row.state, row.problem = INVALID, str(exc)
        return
    row.student_number = event.student_number
    if isinstance(event, ClearanceCompleted):
        _apply_completed(s, row, event)
    else:
        row.revokes_event_id = event.revokes_event_id
        _apply_revoked(s, row, event)


def _apply_completed(s: Session, row: ClearanceEvent, event: ClearanceCompleted) -> None:
    revocation = s.scalars(select(ClearanceEvent).where(
        ClearanceEvent.revokes_event_id == event.event_id,
        ClearanceEvent.id != row.id)).first()
    if revocation is not None:
        row.state, row.problem = WITHDRAWN, "该离校事件在到达前已被撤销，未执行"
        if revocation.state in OPEN_STATES:
            revocation.state = RESOLVED
            revocation.problem = "被撤销的离校事件后到，已不执行"
        return
    student = s.get(Student, event.student_number)
    if student is None:
        row.state, row.problem = UNMATCHED, f"学号 {event.student_number} 在学籍中不存在"
        return
    mismatch = identity_mismatch(event.national_id_number, student.national_id)
    if mismatch:
        row.state, row.problem = CONFLICT, mismatch
        return
    if student.status == event.new_status:
        row.state = NO_CHANGE
        return
    refusal = st.graduation_refusal(student.status)
    if refusal:
        row.state, row.problem = CONFLICT, refusal
        return
    change = change_status(
        s, student, event.new_status,
        reason=f"离校系统办结：{st.label(event.new_status)}（批次 {event.batch}）",
        effective_at=event.occurred_at, actor=CLEARANCE,
        evidence=f"clearance_event:{event.event_id}", correlation_id=event.event_id,
    )
    row.state, row.change_id = APPLIED, change.id


def _apply_revoked(s: Session, row: ClearanceEvent, event: ClearanceRevoked) -> None:
    target = s.scalars(select(ClearanceEvent).where(
        ClearanceEvent.event_id == event.revokes_event_id)).first()
    if target is None or target.state != APPLIED or target.change_id is None:
        if target is not None and target.state in OPEN_STATES:
            target.state = WITHDRAWN
            target.problem = "已被撤销，不再处理"
        row.state, row.problem = UNMATCHED, "被撤销的离校事件未曾执行（未收到、未匹配或未生效）"
        return
    applied = s.get(StatusChange, target.change_id)
    student = s.get(Student, target.student_number)
    assert applied is not None and student is not None
    latest = latest_change(s, student.student_number)
    if latest is None or latest.id != applied.id:
        row.state = CONFLICT
        row.problem = "离校后该生学籍状态已有其他变更，撤销需人工处理"
        return
    change = change_status(
        s, student, applied.old_status,
        reason=f"离校系统撤销：{event.reason}", effective_at=event.occurred_at,
        actor=CLEARANCE, evidence=f"clearance_event:{event.event_id}",
        correlation_id=event.event_id, revokes=applied,
    )
    row.state, row.change_id = APPLIED, change.id
    target.state = REVOKED


def _view(row: ClearanceEvent) -> dict[str, Any]:
    return {
        "id": row.id, "event_id": row.event_id, "routing_key": row.routing_key,
        "student_number": row.student_number, "state": row.state,
        "state_label": STATE_LABELS.get(row.state, row.state), "problem": row.problem,
        "attempts": row.attempts, "received_at": row.received_at.isoformat(),
        "updated_at": row.updated_at.isoformat(), "body": row.body,
    }


def list_problems(db: Database, caller: Caller) -> list[dict[str, Any]]:
    caller.require_role(STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
    with db.reading() as s:
        rows = s.scalars(select(ClearanceEvent).where(ClearanceEvent.state.in_(OPEN_STATES))
                         .order_by(ClearanceEvent.id)).all()
        return [_view(r) for r in rows]


def reprocess(db: Database, caller: Caller, problem_id: int) -> dict[str, Any]:
    """Apply a listed event again after its cause was fixed (e.g. the student registered)."""
    caller.require_role(STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
    with db.transaction() as s:
        row = s.get(ClearanceEvent, problem_id)
        if row is None:
            raise NotFound(f"离校事件记录 {problem_id} 不存在")
        if row.state not in OPEN_STATES:
            raise Invalid(f"该离校事件状态为“{STATE_LABELS.get(row.state, row.state)}”，无需重新处理")
        before = {"state": row.state, "problem": row.problem}
        row.attempts += 1
        _process(s, row)
        audit(s, caller, "clearance.reprocess", str(row.id), before,
              {"state": row.state, "problem": row.problem})
        return _view(row)


def dismiss(db: Database, caller: Caller, problem_id: int, note: str) -> dict[str, Any]:
    """Close a listed event that a person has dealt with outside the platform."""
    caller.require_role(STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
    if not note.strip():
        raise Invalid("请填写关闭原因")
    with db.transaction() as s:
        row = s.get(ClearanceEvent, problem_id)
        if row is None:
            raise NotFound(f"离校事件记录 {problem_id} 不存在")
        if row.state not in OPEN_STATES:
            raise Invalid("该离校事件无需处理")
        before = {"state": row.state, "problem": row.problem}
        row.state, row.problem = RESOLVED, f"人工关闭：{note.strip()}"
        row.updated_at = datetime.now(UTC)
        audit(s, caller, "clearance.dismiss", str(row.id), before,
              {"state": row.state, "problem": row.problem})
        return _view(row)
