"""Aid's own tables: the enrolled register (a read copy fed by roster's events), the needy and
aided registers, programmes, quotas, applications with their reviews, submissions (A1–A4)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.number_aliases import NumberAlias as NumberAlias  # shared by every consumer (R3)


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
    # Roster's time of the newest registration or class change applied (`student_copy.take_snapshot`)
    snapshot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Roster's id of the last status change applied; older ones arriving late are ignored.
    last_change_id: Mapped[int | None] = mapped_column(BigInteger)


class NeedyRecord(Base):
    """困难学生库: one identification per student and academic year (A1)."""

    __tablename__ = "needy_records"
    __table_args__ = (UniqueConstraint("student_number", "academic_year", name="uq_needy_student_year"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    student_number: Mapped[str] = mapped_column(String(20), index=True)
    academic_year: Mapped[str] = mapped_column(String(9), index=True)
    level: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of evidence references
    flags: Mapped[str] = mapped_column(String(64), default="")  # 、-separated
    id_number: Mapped[str] = mapped_column(String(18), default="")
    income_per_capita: Mapped[int | None] = mapped_column(Integer)
    # Who collects is responsible (A3).
    collected_by: Mapped[str] = mapped_column(String(64))
    collected_role: Mapped[str] = mapped_column(String(32))
    identified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProgrammeRow(Base):
    """资助项目 and their eligibility rules as data (`Programme.to_dict()` as JSON)."""

    __tablename__ = "programmes"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    rules: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuotaRow(Base):
    """名额与资金 of a programme in a year at one level (programme, college, class) (A2)."""

    __tablename__ = "quotas"
    __table_args__ = (UniqueConstraint("programme_code", "academic_year", "level", "unit_code",
                                       name="uq_quota_unit"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    programme_code: Mapped[str] = mapped_column(String(16))
    academic_year: Mapped[str] = mapped_column(String(9))
    level: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str] = mapped_column(String(16))
    places: Mapped[int | None] = mapped_column(Integer)  # None: funds only (migration 0003)
    funds: Mapped[int | None] = mapped_column(BigInteger)
    used_places: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    used_funds: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    allocated_by: Mapped[str] = mapped_column(String(64))
    allocated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Application(Base):
    """A student's application for a programme, and where it stands in the review chain (A3)."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("student_number", "programme_code", "academic_year",
                                       name="uq_application_once"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    student_number: Mapped[str] = mapped_column(String(20), index=True)
    college_code: Mapped[str] = mapped_column(String(16), index=True)
    class_code: Mapped[str] = mapped_column(String(16), index=True)
    programme_code: Mapped[str] = mapped_column(String(16))
    academic_year: Mapped[str] = mapped_column(String(9))
    requested_amount: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)
    rank_percent: Mapped[int | None] = mapped_column(Integer)
    statement: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    quota_taken: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Where the quota place was taken (migration 0003): a class move does not move it, so a later
    # return gives it back to the class and college it came from.
    quota_class_code: Mapped[str | None] = mapped_column(String(16))
    quota_college_code: Mapped[str | None] = mapped_column(String(16))
    collected_by: Mapped[str] = mapped_column(String(64))
    collected_role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Review(Base):
    """One decision on an application: who reviewed is responsible (A3)."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    step: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(64))
    reviewer_role: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Award(Base):
    """受助学生库: who received what, when, how much, from whom (A1)."""

    __tablename__ = "awards"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    student_number: Mapped[str] = mapped_column(String(20), index=True)
    programme_code: Mapped[str] = mapped_column(String(16))
    academic_year: Mapped[str] = mapped_column(String(9), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    awarded_on: Mapped[date] = mapped_column(Date)
    payer: Mapped[str] = mapped_column(String(64))


class Instalment(Base):
    __tablename__ = "instalments"
    __table_args__ = (UniqueConstraint("award_id", "seq", name="uq_instalment_seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    award_id: Mapped[int] = mapped_column(ForeignKey("awards.id"), index=True)
    student_number: Mapped[str] = mapped_column(String(20), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    amount: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10), index=True)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Submission(Base):
    """What was last reported to the national system, kept to diff the next export against (A4)."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    academic_year: Mapped[str] = mapped_column(String(9))
    row_count: Mapped[int] = mapped_column(Integer)
    rows: Mapped[str] = mapped_column(Text)  # JSON list of the exported rows
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
