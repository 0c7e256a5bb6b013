"""Transfer use cases so far: the students read copy (from roster) and reading it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from services.common.caller import ACADEMIC_AFFAIRS, AUTHORITY, STUDENT_AFFAIRS, SYSTEM, Caller
from services.common.db import Database
from services.common.envelope import Envelope
from services.common.errors import Invalid, NotFound
from services.common.events import STUDENT_NUMBER, StudentClassChanged, StudentRegistered, StudentStatusChanged
from services.common.health import health_report
from services.common.inbox import first_deliveries, first_delivery
from services.common.number_aliases import current_number, with_current_number, with_current_numbers
from services.common.student_copy import copy_class_change, copy_registration, read_copies
from services.transfer.adapters.orm import Student
from services.transfer.domain import students

SERVICE = "transfer"
# Transfers are handled by the offices that apply status changes and their authority (T1).
TRANSFER_ROLES = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, AUTHORITY)


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
        "may_transfer_out": students.may_transfer_out(row.left),
        "last_change_id": row.last_change_id,
        "updated_at": row.updated_at.isoformat(),
    }


def student_for_matching(db: Database, caller: Caller, student_number: str) -> dict[str, Any]:
    """The record an outflow request is checked against."""
    caller.require_role(*TRANSFER_ROLES)
    if not isinstance(student_number, str) or not re.fullmatch(STUDENT_NUMBER, student_number):
        raise Invalid("学号格式不正确")
    with db.reading() as s:
        row = s.get(Student, student_number)
        if row is None:
            raise NotFound(f"学号 {student_number} 不存在")
        # An authority's scope is an area of institutions, not students: the transfer
        # service acts for this deployment's institutions, which its area supervises.
        if caller.role not in (AUTHORITY, SYSTEM):
            caller.require_student(row.student_number, row.college_code, row.class_code)
        return student_view(row)


def on_student_registered(db: Database, envelope: Envelope) -> None:
    payload = StudentRegistered.model_validate(envelope.payload)
    with db.transaction() as s:
        if not first_delivery(s, envelope, "transfer.on_student_registered"):
            return
        # A former number (R3, the rename overtook this event): the renamed student's copy, not a second one.
        number = current_number(s, payload.student_number)
        row = s.get(Student, number)
        if row is None:
            row = Student(student_number=number, last_change_id=None)
            s.add(row)
        if copy_registration(row, payload, envelope.occurred_at):
            row.updated_at = datetime.now(UTC)


def on_student_status_changed(db: Database, *envelopes: Envelope) -> None:
    """Apply roster's status changes to the read copy. Several events (a batch) apply in one
    transaction, all or none."""
    with db.transaction() as s, s.no_autoflush:
        fresh = first_deliveries(s, envelopes, "transfer.on_student_status_changed")
        # a former number's change (R3, the rename overtook it) goes to the renamed student
        payloads = with_current_numbers(s, [StudentStatusChanged.model_validate(e.payload)
                                            for e in fresh])
        rows = read_copies(s, Student, {p.student_number for p in payloads})
        for payload in payloads:
            _apply_status_change(payload, rows.get(payload.student_number))


def _apply_status_change(payload: StudentStatusChanged, row: Student | None) -> None:
    if row is None:
        # Its student.registered is still on its way (another queue): fail, so the
        # event is retried and, failing that, kept in the dead-letter queue.
        raise NotFound(f"学号 {payload.student_number} 尚未同步，稍后重试")
    if not students.is_newer_change(row.last_change_id, payload.change_id):
        return
    row.status = payload.new_status
    row.left = payload.left
    row.last_change_id = payload.change_id
    row.updated_at = datetime.now(UTC)


def on_student_class_changed(db: Database, envelope: Envelope) -> None:
    """调班 (R9): the read copy follows the class and college."""
    payload = StudentClassChanged.model_validate(envelope.payload)
    with db.transaction() as s:
        if not first_delivery(s, envelope, "transfer.on_student_class_changed"):
            return
        payload = with_current_number(s, payload)  # a former number: the renamed student
        copy_class_change(s, Student, payload, envelope.occurred_at)
