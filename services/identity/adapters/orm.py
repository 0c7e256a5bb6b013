"""Identity's own tables: accounts, their grants and password history, sessions, the login
log, renames, and a read copy of students."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Dialect, ForeignKey, Index, Integer, String, Text, false, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from services.common.models import BigId
from services.common.number_aliases import NumberAlias as NumberAlias  # shared by every consumer (R3)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both back ends (SQLite keeps no offset and returns naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Account(Base):
    """A login: staff by 7-digit staff number (I1), students by student number.

    Never deleted (I2): leaving people are deactivated. A student account created from a
    roster event has no password until one is set for it.
    """

    __tablename__ = "accounts"

    username: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64))
    # The role a session starts in; what it may do comes from its grants (students: own record).
    role: Mapped[str] = mapped_column(String(32), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    password_hash: Mapped[str | None] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deactivated_reason: Mapped[str | None] = mapped_column(Text)
    deactivated_by_event: Mapped[int | None] = mapped_column(BigId)  # roster's status change id

    def snapshot(self) -> dict[str, Any]:
        """The fields worth auditing (never the password hash)."""
        return {
            "display_name": self.display_name, "role": self.role, "active": self.active,
            "must_change_password": self.must_change_password,
            "deactivated_reason": self.deactivated_reason,
            "deactivated_by_event": self.deactivated_by_event,
        }


class LoginSession(Base):
    """A signed-in browser; the gateway's cookie holds only its id."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("accounts.username"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))  # the grant's role it acts in (None: the account's)

    __table_args__ = (Index("ix_sessions_username_open", "username", "ended_at"),)


class AccountGrant(Base):
    """One role over one data scope, held by a staff account (I6). Revoked, never deleted."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(32))
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_ids: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")  # JSON list of codes
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def scope_id_list(self) -> list[str]:
        return list(json.loads(self.scope_ids or "[]"))

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "role": self.role,
                "scope": {"kind": self.scope_kind, "ids": self.scope_id_list},
                "granted_by": self.granted_by, "granted_at": self.granted_at.isoformat()}


class PasswordHistory(Base):
    """Every hash an account has had, newest last: no reuse of the last five (I3)."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(32), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AccountRename(Base):
    """A student account following its student number (I5): old name, new name, when, why."""

    __tablename__ = "account_renames"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    old_username: Mapped[str] = mapped_column(String(32), index=True)
    new_username: Mapped[str] = mapped_column(String(32), index=True)
    renamed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    event_id: Mapped[str | None] = mapped_column(String(36))


class LoginAttempt(Base):
    """Every login attempt and its result: ok · bad_credentials · locked · disabled."""

    __tablename__ = "login_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), index=True)  # as typed, even if unknown
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(20))


class Student(Base):
    """Read copy of roster's students, fed by its events: where each student belongs,
    for scope checks, and whether they have left."""

    __tablename__ = "students"

    student_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    college_code: Mapped[str] = mapped_column(String(16), index=True)
    class_code: Mapped[str] = mapped_column(String(16), index=True)
    left: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_change_id: Mapped[int | None] = mapped_column(BigId)  # newest status change applied
    # Roster's time of the newest registration or class change applied (`student_copy.take_snapshot`)
    snapshot_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrgUnit(Base):
    """Read model of roster's org tree (college → major → class), fed by `org.units_changed`:
    which college a class belongs to, for grants and scope checks."""

    __tablename__ = "org_units"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), index=True)  # college | major | class
    parent_code: Mapped[str | None] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)  # occurred_at of the event that set this state
