"""Aid's own tables. The enrolled register is a read copy fed by roster's events (A1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, String, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Student(Base):
    """在校生库: one row per student roster has told aid about."""

    __tablename__ = "students"

    student_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    gender: Mapped[str] = mapped_column(String(1))
    college_code: Mapped[str] = mapped_column(String(16), index=True)
    class_code: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(32))
    left: Mapped[bool] = mapped_column(Boolean)
    # Set when the student leaves: no further instalments of any award are paid.
    stop_instalments: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Roster's id of the last status change applied; older ones arriving late are ignored.
    last_change_id: Mapped[int | None] = mapped_column(BigInteger)
