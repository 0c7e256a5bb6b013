"""Transfer's own tables. `students` is a read copy fed by roster's events, used to
check outflow requests against the record; the rest hold transfers between institutions (T1–T6),
the interchange messages (xj-transfer/1), peers and their keys, the working-day calendar, leaving
and changes inside the institution (T7). Leaving the country (T3) is roster's `go_abroad` change."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.models import BigId
from services.common.number_aliases import NumberAlias as NumberAlias  # shared by every consumer (R3)


class Base(DeclarativeBase):
    pass


class Student(Base):
    __tablename__ = "students"

    student_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    gender: Mapped[str] = mapped_column(String(1))
    college_code: Mapped[str] = mapped_column(String(16), index=True)
    class_code: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(32))
    left: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Roster's id of the last status change applied; older ones arriving late are ignored.
    last_change_id: Mapped[int | None] = mapped_column(BigInteger)
    # Roster's time of the newest registration or class change applied (`student_copy.take_snapshot`)
    snapshot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Peer(Base):
    """Another institution we exchange transfers with (10-digit 学校标识码)."""

    __tablename__ = "peers"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    province: Mapped[str] = mapped_column(String(2))  # GB/T 2260 province digits, for T2
    authority_code: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PeerKey(Base):
    """A key shared with a peer. Several may be active during a rotation: the newest signs, every
    active one verifies; a retired key verifies nothing."""

    __tablename__ = "peer_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    peer_code: Mapped[str] = mapped_column(ForeignKey("peers.code"), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))  # active | retired
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("peer_code", "key_id", name="uq_peer_keys_peer_key"),)


class Transfer(Base):
    """One transfer, as this institution sees it: `inflow` (the student comes here) or `outflow`."""

    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # transfer_id (chosen by the inflow side)
    direction: Mapped[str] = mapped_column(String(8), index=True)  # inflow | outflow
    peer_code: Mapped[str] = mapped_column(String(10), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    stage: Mapped[str | None] = mapped_column(String(32))  # the stage waiting for a decision, if any
    stage_started_on: Mapped[date | None] = mapped_column(Date)
    stage_deadline: Mapped[date | None] = mapped_column(Date, index=True)
    transfer_kind: Mapped[str] = mapped_column(String(16))  # intra_province | inter_province
    national_student_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(64))
    gender: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[str] = mapped_column(String(10))
    id_type: Mapped[str] = mapped_column(String(2))
    id_number: Mapped[str] = mapped_column(String(32))
    outflow_student_number: Mapped[str | None] = mapped_column(String(20), index=True)
    inflow_student_number: Mapped[str | None] = mapped_column(String(20))
    target_class_code: Mapped[str | None] = mapped_column(String(16))  # inflow: the class joined
    reason: Mapped[str] = mapped_column(Text)
    out_of_term_reason: Mapped[str | None] = mapped_column(Text)  # T5
    evidence: Mapped[str] = mapped_column(Text, default="[]")  # JSON [{name, sha256}]
    inflow_authority: Mapped[str | None] = mapped_column(String(16))
    inflow_approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    record: Mapped[str | None] = mapped_column(Text)  # JSON: sent (archived copy, T6) or received
    record_sha256: Mapped[str | None] = mapped_column(String(64))
    outcome_reason: Mapped[str | None] = mapped_column(Text)  # why rejected or cancelled
    filed_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TransferStage(Base):
    """A decision on one stage of a transfer (by a person, by the deadline, or by the peer)."""

    __tablename__ = "transfer_stages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), index=True)
    # inflow_school | inflow_authority | outflow_school | outflow_authority
    stage: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))  # approved | rejected
    reason: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[date | None] = mapped_column(Date)
    deadline_passed: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TransferFile(Base):
    """An evidence file of a transfer we filed (PDF/JPEG/PNG); the request carries its name and sha256."""

    __tablename__ = "transfer_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class InterchangeMessage(Base):
    """Every interchange message sent or received, kept with its transfer.

    out: pending → sent (re-sent with backoff) → acked | cancelled; in: applied | duplicate | rejected
    (with the ack error and a detail for the inspection list).
    """

    __tablename__ = "interchange_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    message_id: Mapped[str | None] = mapped_column(String(64))
    transfer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    peer_code: Mapped[str | None] = mapped_column(String(16))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    state: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("direction", "message_id", name="uq_interchange_direction_message"),
        Index("ix_interchange_due", "direction", "state", "next_attempt_at"),
    )


class CalendarDay(Base):
    """An override of the working-day calendar: a holiday or a swapped workday (调休), T4."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(100))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TransferSetting(Base):
    """Configured values (JSON): deadline working days, per authority; term windows (T5)."""

    __tablename__ = "transfer_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InternalChange(Base):
    """Change of major or study centre inside the institution (T7): the unit left and the unit
    joined each approve; then roster moves the student."""

    __tablename__ = "internal_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student_number: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # major | study_centre
    from_unit: Mapped[str] = mapped_column(String(16))
    to_unit: Mapped[str] = mapped_column(String(16))
    to_class_code: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(24), index=True)  # pending_left | pending_joined | approved | rejected
    approvals: Mapped[str] = mapped_column(Text, default="[]")  # JSON [{unit, by, approve, note, at}]
    filed_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
