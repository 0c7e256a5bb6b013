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
from sqlalchemy.orm import Session, load_only

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, STUDENT_AFFAIRS, SYSTEM, Caller, Scope
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
from services.roster.handlers import change_status, latest_change, publish_status_change, stage_status_change
from services.roster.status_changes import KIND_OF_GRADUATION, close_pending_graduations

CLEARANCE = Actor(kind="external", id="clearance", name="离校系统")
CLOSED_BY_CLEARANCE = "离校系统办结"

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
    return receive_many(db, routing_key, [body])[0]


def receive_many(db: Database, routing_key: str, bodies: list[Any]) -> list[str]:
    """Record and apply clearance events in one transaction (all or none), in order.

    Completions (the bulk of a graduation day) are looked up in a few queries for the
    whole batch and their status changes flushed together; revocations, rare and
    dependent on earlier rows, go one by one. A concurrent duplicate (another instance)
    fails the batch on the unique event_id; each event is then retried alone.
    """
    with db.transaction() as s:
        if routing_key != "clearance.completed":
            return [_receive(s, routing_key, body, _Direct(s)) for body in bodies]
        with s.no_autoflush:
            batch = _Batch(s, bodies)
            states = [_receive(s, routing_key, body, batch) for body in bodies]
            batch.publish()
        return states


class _Direct:
    """Lookups and status changes straight against the session (one event at a time)."""

    def __init__(self, s: Session) -> None:
        self.s = s

    def seen(self, event_id: str) -> bool:
        return self.s.scalar(select(ClearanceEvent.id).where(ClearanceEvent.event_id == event_id)) is not None

    def add(self, row: ClearanceEvent) -> None:
        self.s.add(row)
        self.s.flush()  # a concurrent duplicate fails here on the unique event_id

    def revocation_of(self, row: ClearanceEvent, event_id: str) -> ClearanceEvent | None:
        return self.s.scalars(select(ClearanceEvent).where(
            ClearanceEvent.revokes_event_id == event_id, ClearanceEvent.id != row.id)).first()

    def student(self, number: str) -> Student | None:
        return self.s.get(Student, number)

    def graduate(self, row: ClearanceEvent, student: Student, event: ClearanceCompleted) -> None:
        change = change_status(self.s, student, event.new_status, **_graduation(event))
        change.kind = KIND_OF_GRADUATION[event.new_status]
        row.change_id = change.id
        _audit_change(self.s, change, event.event_id)
        close_pending_graduations(self.s, [student.student_number], CLOSED_BY_CLEARANCE)


class _Batch(_Direct):
    """The same lookups answered from a few queries made for the whole batch."""

    def __init__(self, s: Session, bodies: list[Any]) -> None:
        super().__init__(s)
        ids = [i for i in map(event_id_of, bodies) if i]
        numbers = {b["student_number"] for b in bodies
                   if isinstance(b, dict) and isinstance(b.get("student_number"), str)}
        self._seen = set(s.scalars(select(ClearanceEvent.event_id).where(ClearanceEvent.event_id.in_(ids))))
        self._revocations = {r.revokes_event_id: r for r in s.scalars(
            select(ClearanceEvent).where(ClearanceEvent.revokes_event_id.in_(ids)))}
        # Only what a graduation reads: the record has some forty columns.
        self._students = {r.student_number: r for r in s.scalars(
            select(Student).where(Student.student_number.in_(numbers))
            .options(load_only(Student.student_number, Student.status, Student.national_id)))}
        self._staged: list[tuple[ClearanceEvent, StatusChange, str]] = []
        self._rows: list[ClearanceEvent] = []

    def seen(self, event_id: str) -> bool:
        return event_id in self._seen

    def add(self, row: ClearanceEvent) -> None:
        # Added after the status changes' flush (`publish`), so each row is inserted with its
        # change id instead of being updated with it afterwards.
        self._rows.append(row)
        if row.event_id:
            self._seen.add(row.event_id)

    def revocation_of(self, row: ClearanceEvent, event_id: str) -> ClearanceEvent | None:
        return self._revocations.get(event_id)

    def student(self, number: str) -> Student | None:
        return self._students.get(number)

    def graduate(self, row: ClearanceEvent, student: Student, event: ClearanceCompleted) -> None:
        details = _graduation(event)
        correlation_id = details.pop("correlation_id")
        change = stage_status_change(self.s, student, event.new_status, **details)
        change.kind = KIND_OF_GRADUATION[event.new_status]
        self._staged.append((row, change, correlation_id))

    def publish(self) -> None:
        """One flush gives every staged change its id; then their events go to the outbox."""
        self.s.flush()
        for row, change, _ in self._staged:
            row.change_id = change.id
        self.s.add_all(self._rows)
        for _, change, correlation_id in self._staged:
            publish_status_change(self.s, change, actor=CLEARANCE, correlation_id=correlation_id)
            # Linked at the commit's flush: one chain append (one head lock) for the whole batch.
            _audit_change(self.s, change, correlation_id)
        close_pending_graduations(self.s, [change.student_number for _, change, _ in self._staged],
                                  CLOSED_BY_CLEARANCE)


def _audit_change(s: Session, change: StatusChange, event_id: str, **extra: Any) -> None:
    """A clearance-driven status change in the chained audit log, acted by the clearance system."""
    caller = Caller(user_id=CLEARANCE.id, username=CLEARANCE.id, role=SYSTEM, scope=Scope(kind="institution"),
                    correlation_id=event_id)
    action = "status.revoke" if change.revokes_change_id else f"status.{change.kind}"
    audit(s, caller, action, change.student_number, {"status": change.old_status},
          {"status": change.new_status, "change_id": change.id, "reason": change.reason,
           "effective_at": change.effective_at.isoformat(), "evidence": change.evidence,
           "clearance_event": event_id, **extra}, chain=True)


def _graduation(event: ClearanceCompleted) -> dict[str, Any]:
    return {
        "reason": f"离校系统办结：{st.label(event.new_status)}（批次 {event.batch}）",
        "effective_at": event.occurred_at, "actor": CLEARANCE,
        "evidence": f"clearance_event:{event.event_id}", "correlation_id": event.event_id,
    }


def _receive(s: Session, routing_key: str, body: Any, lookups: _Direct) -> str:
    event_id = event_id_of(body)
    if event_id and lookups.seen(event_id):
        return "duplicate"
    now = datetime.now(UTC)
    row = ClearanceEvent(event_id=event_id, routing_key=routing_key,
                         body=json.dumps(body, ensure_ascii=False, default=str),
                         state=UNMATCHED, attempts=1, received_at=now, updated_at=now)
    lookups.add(row)
    _process(s, row, lookups)
    return row.state


def _process(s: Session, row: ClearanceEvent, lookups: _Direct | None = None) -> None:
    lookups = lookups or _Direct(s)
    row.updated_at = datetime.now(UTC)
    row.problem = None
    try:
        event = parse(row.routing_key, json.loads(row.body))
    except ClearanceInvalid as exc:
        row.state, row.problem = INVALID, str(exc)
        return
    row.student_number = event.student_number
    if isinstance(event, ClearanceCompleted):
        _apply_completed(row, event, lookups)
    else:
        row.revokes_event_id = event.revokes_event_id
        _apply_revoked(s, row, event)


def _apply_completed(row: ClearanceEvent, event: ClearanceCompleted, lookups: _Direct) -> None:
    revocation = lookups.revocation_of(row, event.event_id)
    if revocation is not None:
        row.state, row.problem = WITHDRAWN, "该离校事件在到达前已被撤销，未执行"
        if revocation.state in OPEN_STATES:
            revocation.state = RESOLVED
            revocation.problem = "被撤销的离校事件后到，已不执行"
        return
    student = lookups.student(event.student_number)
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
    row.state = APPLIED
    lookups.graduate(row, student, event)


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
    _audit_change(s, change, event.event_id, revokes_change_id=applied.id)


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
              {"state": row.state, "problem": row.problem}, chain=True)
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
              {"state": row.state, "problem": row.problem}, chain=True)
        return _view(row)
