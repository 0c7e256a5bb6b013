"""Housing's own tables: the bed inventory, who holds each bed, its history, and a read
copy of the students roster has told housing about.

Inventory is building → room → bed. A bed's current occupant lives on the bed row (the
unique constraint is "one bed per student"); every stay is also an `occupancies` row, so
later work (allocation of rooms to colleges, bulk moves and swaps) adds columns and rows
without reshaping these tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.number_aliases import NumberAlias as NumberAlias  # shared by every consumer (R3)

# SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

OPEN = text("ended_at IS NULL")


class Base(DeclarativeBase):
    pass


class Campus(Base):
    __tablename__ = "campuses"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(32))


class Building(Base):
    __tablename__ = "buildings"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    # 'M' 男生楼, 'F' 女生楼, 'mixed' 混合楼
    gender_policy: Mapped[str] = mapped_column(String(8))
    campus_code: Mapped[str | None] = mapped_column(String(16), index=True)
    floors: Mapped[int | None] = mapped_column(Integer)


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    building_code: Mapped[str] = mapped_column(ForeignKey("buildings.code"))
    room_no: Mapped[str] = mapped_column(String(16))
    capacity: Mapped[int] = mapped_column(Integer)
    floor: Mapped[int | None] = mapped_column(Integer)
    room_type: Mapped[str] = mapped_column(String(16), default="", server_default="")
    fee: Mapped[int | None] = mapped_column(Integer)  # yuan per year
    # The college the room is allocated to (H1); None: open to every college.
    college_code: Mapped[str | None] = mapped_column(String(16), index=True)

    building: Mapped[Building] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (UniqueConstraint("building_code", "room_no", name="uq_rooms_building_room"),)


class Bed(Base):
    __tablename__ = "beds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), index=True)
    bed_no: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(64), unique=True)
    # One bed per student: a second bed for the same student fails at the database too.
    occupant: Mapped[str | None] = mapped_column(String(20), unique=True)
    occupied_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A college for this bed alone (H1), overriding its room's allocation.
    college_code: Mapped[str | None] = mapped_column(String(16))

    room: Mapped[Room] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (UniqueConstraint("room_id", "bed_no", name="uq_beds_room_bed"),)

    @property
    def allocated_to(self) -> str | None:
        """The college the bed is allocated to: its own, else its room's (None: any college)."""
        return self.college_code or self.room.college_code


class Occupancy(Base):
    """One stay of one student in one bed; open while `ended_at` is null."""

    __tablename__ = "occupancies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bed_id: Mapped[int] = mapped_column(ForeignKey("beds.id"))
    student_number: Mapped[str] = mapped_column(String(20), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Why the stay ended: the roster status that released it (e.g. 'graduated'), later 'moved'.
    end_reason: Mapped[str | None] = mapped_column(String(32))
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Why a student was put in a room allocated to another college.
    override_reason: Mapped[str | None] = mapped_column(String(200))
    # Roster's status change that ended this stay; its revocation gives the bed back.
    released_by_change_id: Mapped[int | None] = mapped_column(BigInteger, index=True)

    bed: Mapped[Bed] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (
        # At most one open stay per bed and per student, whatever the code above does.
        Index("uq_occupancies_open_bed", "bed_id", unique=True,
              sqlite_where=OPEN, postgresql_where=OPEN),
        Index("uq_occupancies_open_student", "student_number", unique=True,
              sqlite_where=OPEN, postgresql_where=OPEN),
    )


class Student(Base):
    """Read copy of roster's student, fed by `student.registered` / `student.status_changed`."""

    __tablename__ = "students"

    student_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    gender: Mapped[str] = mapped_column(String(1))  # GB/T 2261.1: 1 男, 2 女
    college_code: Mapped[str] = mapped_column(String(16), index=True)
    class_code: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(32))
    left: Mapped[bool] = mapped_column(Boolean, index=True)
    # Roster's id of the last status change applied; an older one arriving late is ignored.
    last_change_id: Mapped[int | None] = mapped_column(BigInteger)
    # Roster's time of the newest registration or class change applied (`student_copy.take_snapshot`)
    snapshot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EarlyStatusChange(Base):
    """A status change that arrived before the student's registration (the two events
    travel on different queues). Applied, then deleted, when the registration arrives."""

    __tablename__ = "early_status_changes"

    student_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    change_id: Mapped[int] = mapped_column(BigInteger)
    new_status: Mapped[str] = mapped_column(String(32))
    left: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
