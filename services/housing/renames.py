"""A student's number replaced (roster's `student.number_changed`, R3): housing's copies follow.

The read copy, every stay, the bed's occupant and a parked early status change move to the new
number in one transaction; audited, idempotent by the inbox.

Order: the event travels on its own queue. Arriving before the student's `student.registered`
(no copy under either number) it raises `NotFound`, so the handler's retries (then the dead-letter
replay) apply it once the registration is in. A copy already under the new number (a registration
roster sent after the rename overtook this event) is the newer one: the old copy is dropped and
the rest still moves.

The old number is kept as an alias of the new one (`number_aliases`): roster's events still naming it
(on other queues, overtaken by this one) are resolved to the renamed student by the handlers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, update

from services.common.audit import audit
from services.common.caller import system_caller
from services.common.db import Database
from services.common.envelope import Envelope
from services.common.errors import NotFound
from services.common.events import StudentNumberChanged
from services.common.inbox import first_delivery
from services.common.student_copy import record_alias
from services.housing.adapters.locks import lock_students
from services.housing.adapters.orm import Bed, EarlyStatusChange, NumberAlias, Occupancy, Student

SERVICE = "housing"
CONSUMER = "housing.on_student_number_changed"
# Every housing column holding a student number (besides the read copy's key).
RENAMED = ((Occupancy.__table__, "student_number"), (Bed.__table__, "occupant"),
           (EarlyStatusChange.__table__, "student_number"))


def on_student_number_changed(db: Database, envelope: Envelope) -> None:
    payload = StudentNumberChanged.model_validate(envelope.payload)
    old, new = payload.old_number, payload.new_number
    now = datetime.now(UTC)
    with db.transaction() as s:
        if not first_delivery(s, envelope, CONSUMER):
            return
        lock_students(s, sorted((old, new)))  # the same locks as every bed change of these students
        copy, newer = s.get(Student, old), s.get(Student, new)
        if copy is None and newer is None:
            raise NotFound(f"还没有学号 {old} 的学生信息，稍后重试")
        moved = {table.name: s.execute(update(table).where(table.c[column] == old).values({column: new})).rowcount
                 for table, column in RENAMED}
        if copy is not None:
            s.expunge(copy)
            if newer is None:
                s.execute(update(Student.__table__).where(Student.__table__.c.student_number == old)
                          .values(student_number=new, updated_at=now))
            else:
                s.execute(delete(Student.__table__).where(Student.__table__.c.student_number == old))
        record_alias(s, NumberAlias, old, new, now)  # roster events for `old` still on their way find `new`
        audit(s, system_caller(SERVICE, envelope.correlation_id), "student.renumber", new,
              {"student_number": old}, {"student_number": new, "moved": moved, "event_id": str(envelope.event_id)})
