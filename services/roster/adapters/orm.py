"""Roster's own tables. Other services never read them; they hear of changes by events."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.models import BigId


class Base(DeclarativeBase):
    pass


class OrgUnit(Base):
    """College → major → class (R6 codes)."""

    __tablename__ = "org_units"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # college | major | class
    parent_code: Mapped[str | None] = mapped_column(String(16))


class Student(Base):
    __tablename__ = "students"

    student_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    gender: Mapped[str] = mapped_column(String(1))
    national_id: Mapped[str | None] = mapped_column(String(18), unique=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    college_code: Mapped[str] = mapped_column(String(16), index=True)
    class_code: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StatusChange(Base):
    """学籍异动: every status change, who made it, on what evidence; revocable."""

    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student_number: Mapped[str] = mapped_column(ForeignKey("students.student_number"))
    old_status: Mapped[str] = mapped_column(String(32))
    new_status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    effective_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    evidence: Mapped[str | None] = mapped_column(Text)
    revokes_change_id: Mapped[int | None] = mapped_column(ForeignKey("status_changes.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_status_changes_student", "student_number", "id"),)


class ClearanceEvent(Base):
    """Every event received from the clearance system, and what became of it.

    States: applied · duplicate-free by event_id · unmatched (unknown student) ·
    invalid (breaks the contract) · conflict (cannot apply; a person decides) ·
    withdrawn (revoked before it could apply) · resolved (staff closed it).
    """

    __tablename__ = "clearance_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    routing_key: Mapped[str] = mapped_column(String(64))
    student_number: Mapped[str | None] = mapped_column(String(32), index=True)
    revokes_event_id: Mapped[str | None] = mapped_column(String(36), index=True)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    problem: Mapped[str | None] = mapped_column(Text)
    change_id: Mapped[int | None] = mapped_column(ForeignKey("status_changes.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
