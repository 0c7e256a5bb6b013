"""A student account follows its student number (I5): roster's `student.number_changed`, and
`student.merged` (a duplicate record removed)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import STUDENT, system_caller
from services.common.db import Database
from services.common.envelope import Envelope
from services.common.errors import InvalidEvent, NotFound
from services.common.events import StudentMerged
from services.common.inbox import first_delivery
from services.common.number_aliases import current_number
from services.common.renames import Moved, NumberChange, Renumbering, rename_student
from services.identity import handlers as h
from services.identity.adapters.orm import (
    Account,
    AccountGrant,
    AccountRename,
    LoginSession,
    PasswordHistory,
    Student,
)

COPIED = ("display_name", "role", "active", "password_hash", "must_change_password", "failed_logins",
          "locked_until", "password_changed_at", "created_at", "deactivated_reason", "deactivated_by_event")


def _rename_account(s: Session, change: NumberChange) -> Moved | None:
    """The account moves to the new username with its sessions, grants and password history; the old
    name is kept in `account_renames`, so the login history stays reachable under it."""
    old, new, now = change.old, change.new, change.at
    account = s.get(Account, old)
    if account is None:
        if s.get(Account, new) is not None:  # renamed already (the same change sent again)
            return None
        # Its student.registered is still on its way (another queue): retry later.
        raise NotFound(f"还没有学号 {old} 的账号，稍后重试")
    if account.role != STUDENT:
        raise InvalidEvent(f"{old} is a staff account, not a student's")
    if s.get(Account, new) is not None:
        raise InvalidEvent(f"student number {new} already has an account")
    before = account.snapshot()
    renamed = Account(username=new, updated_at=now, **{c: getattr(account, c) for c in COPIED})
    s.add(renamed)
    s.flush()
    ended = h._end_sessions(s, old, now)
    moved = {table.__tablename__: s.execute(update(table).where(table.username == old).values(username=new)).rowcount
             for table in (LoginSession, AccountGrant, PasswordHistory)}
    s.delete(account)
    s.add(AccountRename(old_username=old, new_username=new, renamed_at=now, event_id=change.event_id))
    return Moved(rows=moved, before={**before, "username": old},
                 after={**renamed.snapshot(), "username": new, "sessions_ended": ended})


# The account is what shows the student is known here (its guard raises NotFound), not the read copy.
RENUMBERING = Renumbering(service=h.SERVICE, consumer="identity.on_student_number_changed", copy=Student,
                          own=_rename_account, copy_required=False, action="account.rename")


def on_student_number_changed(db: Database, envelope: Envelope) -> None:
    """Rename the account and the read copy (`services.common.renames`). Open sessions end: the
    student logs in again with the new number."""
    with db.transaction() as s:
        rename_student(s, envelope, RENUMBERING)


def on_student_merged(db: Database, envelope: Envelope) -> None:
    """A verified duplicate record was removed (R7, R14): its account is retired — disabled,
    never deleted (I2) — and its sessions end; the kept number's account stays as it is."""
    payload = StudentMerged.model_validate(envelope.payload)
    now = h._now()
    with db.transaction() as s:
        if not first_delivery(s, envelope, "identity.on_student_merged"):
            return
        # Either number may be a former one (R3) whose rename overtook this event.
        removed = current_number(s, payload.removed_number)
        kept = current_number(s, payload.kept_number)
        account = s.get(Account, removed)
        if account is None:
            raise NotFound(f"还没有学号 {removed} 的账号，稍后重试")
        if account.role != STUDENT:
            raise InvalidEvent(f"{removed} is a staff account, not a student's")
        before = account.snapshot()
        account.active = False
        account.deactivated_reason = f"重复学籍已合并到学号 {kept}"
        account.deactivated_by_event = None  # not a status change: no revocation brings it back
        account.updated_at = now
        student = s.get(Student, removed)
        if student is not None:
            student.left, student.updated_at = True, now
        ended = h._end_sessions(s, removed, now)
        audit(s, system_caller(h.SERVICE, envelope.correlation_id), "account.retire", removed, before,
              {**account.snapshot(), "merged_into": kept, "sessions_ended": ended,
               "event_id": str(envelope.event_id)})
