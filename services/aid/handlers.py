"""Aid use cases: the enrolled register (read copy of roster) and reading it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.aid.adapters.orm import Application, Student
from services.aid.domain import registers, review
from services.common.audit import audit
from services.common.caller import (
    AID_AUDITOR,
    AID_OPERATOR,
    COUNSELOR,
    DEPUTY_SECRETARY,
    STUDENT_AFFAIRS,
    SYSTEM,
    Caller,
    system_caller,
)
from services.common.db import Database
from services.common.envelope import Envelope
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.events import STUDENT_NUMBER, StudentClassChanged, StudentRegistered, StudentStatusChanged
from services.common.health import health_report
from services.common.inbox import first_deliveries, first_delivery
from services.common.number_aliases import current_number, with_current_number, with_current_numbers
from services.common.student_copy import copy_class_change, copy_registration, read_copies

SERVICE = "aid"
# Aid data is sensitive (A5): the aid centre and student affairs see every student;
# counselors and deputy secretaries only those in their scope; nobody else.
WHOLE_REGISTER = (AID_OPERATOR, AID_AUDITOR, STUDENT_AFFAIRS)
SCOPED = (COUNSELOR, DEPUTY_SECRETARY)


def health(db: Database) -> dict[str, Any]:
    return health_report(db, SERVICE, students_known=Student)


def student_view(row: Student) -> dict[str, Any]:
    return {
        "student_number": row.student_number,
        "name": row.name,
        "gender": row.gender,
        "college_code": row.college_code,
        "class_code": row.class_code,
        "status": row.status,
        "left": row.left,
        "enrolled": registers.is_enrolled(row.status, row.left),
        "stop_instalments": row.stop_instalments,
        "last_change_id": row.last_change_id,
        "updated_at": row.updated_at.isoformat(),
    }


def enrolled_student(db: Database, caller: Caller, student_number: str) -> dict[str, Any]:
    """One student of the enrolled register; the view itself is audited (A5)."""
    caller.require_role(*WHOLE_REGISTER, *SCOPED)
    if not isinstance(student_number, str) or not re.fullmatch(STUDENT_NUMBER, student_number):
        raise Invalid("学号格式不正确")
    with db.transaction() as s:
        row = s.get(Student, student_number)
        if row is None:
            # Scoped staff must not learn which numbers exist outside their scope.
            if caller.role in (*WHOLE_REGISTER, SYSTEM):
                raise NotFound(f"在校生库中没有学号 {student_number}")
            raise Forbidden(f"学生 {student_number} 不在您的数据权限范围内")
        caller.require_student(row.student_number, row.college_code, row.class_code)
        audit(s, caller, "enrolled.view", row.student_number)
        return student_view(row)


def on_student_registered(db: Database, envelope: Envelope) -> None:
    payload = StudentRegistered.model_validate(envelope.payload)
    now = datetime.now(UTC)
    with db.transaction() as s:
        if not first_delivery(s, envelope, "aid.on_student_registered"):
            return
        # A former number (R3, the rename overtook this event): the renamed student's copy, not a second one.
        number = current_number(s, payload.student_number)
        row = s.get(Student, number)
        if row is None:
            row = Student(student_number=number, last_change_id=None,
                          stop_instalments=False)
            s.add(row)
        if not copy_registration(row, payload, envelope.occurred_at):
            return  # an older snapshot than the copy holds
        # Registered as already gone (e.g. a late import of a graduate): nothing to pay.
        if row.last_change_id is None and payload.left:
            row.stop_instalments = True
        row.updated_at = now


def on_student_status_changed(db: Database, *envelopes: Envelope) -> None:
    """Apply roster's status changes; leaving stops future instalments (A5). Several events (a batch) apply in one
    transaction, all or none."""
    with db.transaction() as s, s.no_autoflush:
        fresh = first_deliveries(s, envelopes, "aid.on_student_status_changed")
        # a former number's change (R3, the rename overtook it) goes to the renamed student
        payloads = with_current_numbers(s, [StudentStatusChanged.model_validate(e.payload)
                                            for e in fresh])
        rows = read_copies(s, Student, {p.student_number for p in payloads})
        for envelope, payload in zip(fresh, payloads, strict=True):
            _apply_status_change(s, envelope, payload, rows.get(payload.student_number))


def _apply_status_change(s: Session, envelope: Envelope, payload: StudentStatusChanged,
                         row: Student | None) -> None:
    change = registers.StatusChange(change_id=payload.change_id, new_status=payload.new_status,
                                    left=payload.left, revokes_change_id=payload.revokes_change_id)
    if row is None:
        # Its student.registered is still on its way (another queue): fail, so the
        # event is retried and, failing that, kept in the dead-letter queue.
        raise NotFound(f"在校生库中还没有学号 {payload.student_number}，稍后重试")
    if not registers.is_newer_change(row.last_change_id, change.change_id):
        return
    stopped_before = row.stop_instalments
    row.status = change.new_status
    row.left = change.left
    row.last_change_id = change.change_id
    row.stop_instalments = registers.stop_instalments_after(change, stopped_before)
    row.updated_at = datetime.now(UTC)
    if row.stop_instalments != stopped_before:
        audit(s, system_caller(SERVICE, envelope.correlation_id),
              "instalments.stop" if row.stop_instalments else "instalments.resume",
              row.student_number, {"stop_instalments": stopped_before},
              {"stop_instalments": row.stop_instalments, "status": row.status,
               "change_id": change.change_id, "event_id": str(envelope.event_id)})


def on_student_class_changed(db: Database, envelope: Envelope) -> None:
    """调班 (R9): the register's class and college follow, and so do the student's applications still
    under review (`review.follows_class_move`): they leave the old counselor's queue for the new one's.

    A quota place already taken stays with the class and college it was taken from (the application
    keeps `quota_class_code`/`quota_college_code`, and a return gives the place back there): it was
    granted from their allocation by their reviewers, and taking one from the new class instead could
    fail (its places may be used up) where an event cannot be refused."""
    payload = StudentClassChanged.model_validate(envelope.payload)
    with db.transaction() as s:
        if not first_delivery(s, envelope, "aid.on_student_class_changed"):
            return
        payload = with_current_number(s, payload)  # a former number: the renamed student
        row = copy_class_change(s, Student, payload, envelope.occurred_at)
        who = system_caller(SERVICE, envelope.correlation_id)
        now = datetime.now(UTC)
        for app in s.scalars(select(Application).where(Application.student_number == row.student_number)
                             .order_by(Application.id).with_for_update()):
            if not review.follows_class_move(app.status) or \
                    (app.class_code, app.college_code) == (row.class_code, row.college_code):
                continue
            before = {"class_code": app.class_code, "college_code": app.college_code}
            app.class_code, app.college_code, app.updated_at = row.class_code, row.college_code, now
            audit(s, who, "application.class_move", f"application:{app.id}", before,
                  {"class_code": app.class_code, "college_code": app.college_code, "status": app.status,
                   "quota_class_code": app.quota_class_code, "event_id": str(envelope.event_id)})
