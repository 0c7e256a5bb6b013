"""Roster's own tables. Other services never read them; they hear of changes by events."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
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
    national_id: Mapped[str | None] = mapped_column(String(32), unique=True)  # document number (id_type)
    birth_date: Mapped[date | None] = mapped_column(Date)
    college_code: Mapped[str] = mapped_column(String(16), index=True)
    class_code: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The full record (national K-12 and university new-student fields); codes per
    # services/roster/data/code_tables.json, divisions GB/T 2260 (see domain/record.py).
    exam_number: Mapped[str | None] = mapped_column(String(32), index=True)
    id_type: Mapped[str | None] = mapped_column(String(2))
    ethnicity: Mapped[str | None] = mapped_column(String(2))
    political_status: Mapped[str | None] = mapped_column(String(2))
    native_place: Mapped[str | None] = mapped_column(String(6))
    birthplace: Mapped[str | None] = mapped_column(String(6))
    household_division: Mapped[str | None] = mapped_column(String(6))
    household_type: Mapped[str | None] = mapped_column(String(2))
    hmt_overseas: Mapped[str | None] = mapped_column(String(2))
    health: Mapped[str | None] = mapped_column(String(2))
    entry_month: Mapped[str | None] = mapped_column(String(7))
    entry_mode: Mapped[str | None] = mapped_column(String(2))
    study_mode: Mapped[str | None] = mapped_column(String(2))
    student_source: Mapped[str | None] = mapped_column(String(2))
    major_code: Mapped[str | None] = mapped_column(String(16))
    level: Mapped[str | None] = mapped_column(String(2))
    program_years: Mapped[str | None] = mapped_column(String(4))
    study_form: Mapped[str | None] = mapped_column(String(2))
    expected_graduation: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(128))
    postcode: Mapped[str | None] = mapped_column(String(6))
    address: Mapped[str | None] = mapped_column(String(200))
    home_address: Mapped[str | None] = mapped_column(String(200))
    mailing_address: Mapped[str | None] = mapped_column(String(200))
    guardians: Mapped[str | None] = mapped_column(Text)  # JSON list of {name, relation, id_type, id_number, phone}
    # Year of study (年级, 1 = first year); promoted each 1 August (R17). NULL: from the entry year.
    grade: Mapped[int | None] = mapped_column(Integer)
    # When the student reported at the start of study (报到); NULL after the welcome period → 未报到 (R4).
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 全国学籍号 kept from another institution (transfer in, T2); NULL: "G" + the ID number (transfers_in_out.py).
    national_student_id: Mapped[str | None] = mapped_column(String(32), index=True)

    __table_args__ = (Index("ix_students_name_gender_birth", "name", "gender", "birth_date"),)


class CodeEntry(Base):
    """A local edit of a code table (字典) by the student affairs office, over the standard data file."""

    __tablename__ = "code_entries"

    table_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    label: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(64))


class ProblemRecord(Base):
    """问题学籍 (R14): suspected duplicates, with the evidence and the decision taken."""

    __tablename__ = "problem_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # duplicate
    match_key: Mapped[str] = mapped_column(String(160), unique=True)
    student_numbers: Mapped[str] = mapped_column(Text)  # JSON list
    evidence: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)  # open | merged | dismissed
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(64))


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
    # The kind of change (domain/transitions.py); NULL for revocations and older rows.
    kind: Mapped[str | None] = mapped_column(String(32))
    # What the kind needs beyond the reason, JSON (e.g. {"discharged_on": "2026-09-01"}).
    details: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_status_changes_student", "student_number", "id"),)


class StatusApplication(Base):
    """A status change waiting for the authority's approval (K-12, R8), when so configured."""

    __tablename__ = "status_applications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student_number: Mapped[str] = mapped_column(ForeignKey("students.student_number"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    effective_on: Mapped[date] = mapped_column(Date)
    evidence: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | approved | rejected
    requested_by: Mapped[str] = mapped_column(String(64))
    requester_role: Mapped[str] = mapped_column(String(32))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    change_id: Mapped[int | None] = mapped_column(ForeignKey("status_changes.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StatusAttachment(Base):
    """Evidence of a status change (证明材料): a scanned document or photo, kept with the change."""

    __tablename__ = "status_attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    change_id: Mapped[int | None] = mapped_column(ForeignKey("status_changes.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("status_applications.id"), index=True)
    student_number: Mapped[str] = mapped_column(String(20), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RosterSetting(Base):
    """A configured date or threshold of the academic calendar (defaults in domain/calendar.py)."""

    __tablename__ = "roster_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(64))


class Absence(Base):
    """One school day a student was absent (缺勤), entered by the counselor or imported (R16)."""

    __tablename__ = "absences"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student_number: Mapped[str] = mapped_column(ForeignKey("students.student_number"))
    day: Mapped[date] = mapped_column(Date)
    excused: Mapped[bool] = mapped_column(Boolean, default=False)  # with a reason (请假)
    reachable: Mapped[bool] = mapped_column(Boolean, default=False)  # the family or student answered
    note: Mapped[str | None] = mapped_column(Text)
    entered_by: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("student_number", "day", name="uq_absences_student_day"),)


class PendingGraduation(Base):
    """待毕业 (R18): a student who has not graduated on time, why, and when it is expected."""

    __tablename__ = "pending_graduations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student_number: Mapped[str] = mapped_column(ForeignKey("students.student_number"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    expected_on: Mapped[date | None] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), index=True)  # open | closed
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_reason: Mapped[str | None] = mapped_column(Text)


class CalendarRun(Base):
    """One calendar job applied for one period: a second run of the same period does nothing."""

    __tablename__ = "calendar_runs"

    job: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)  # e.g. "2027" or "2027-09-20"
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    affected: Mapped[int] = mapped_column(Integer)
    details: Mapped[str | None] = mapped_column(Text)  # JSON summary


class ClassMove(Base):
    """调班 (R9): a student moved between classes, by whom and why."""

    __tablename__ = "class_moves"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student_number: Mapped[str] = mapped_column(ForeignKey("students.student_number"), index=True)
    old_class_code: Mapped[str] = mapped_column(String(16))
    new_class_code: Mapped[str] = mapped_column(String(16))
    old_college_code: Mapped[str] = mapped_column(String(16))
    new_college_code: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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


class FieldPolicy(Base):
    """R10: per field, what students and college staff may do (defaults in domain/policy.py)."""

    __tablename__ = "field_policies"

    field: Mapped[str] = mapped_column(String(32), primary_key=True)
    student_access: Mapped[str] = mapped_column(String(16))
    staff_access: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(64))


class ChangeRequest(Base):
    """A requested change of a student's record with before/after, evidence and each review (R5, R12)."""

    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    student_number: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # self | key
    changes: Mapped[str] = mapped_column(Text)  # JSON {field: {"before": …, "after": …}}
    evidence: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(24), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requester_role: Mapped[str] = mapped_column(String(32))
    reviews: Mapped[str] = mapped_column(Text)  # JSON list of {by, role, approve, note, at}
    college_code: Mapped[str] = mapped_column(String(16))
    class_code: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TransferAdmission(Base):
    """A student admitted by a transfer from another institution (T1): one per transfer, so a
    repeated admission returns the same student number."""

    __tablename__ = "transfer_admissions"

    transfer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    student_number: Mapped[str] = mapped_column(ForeignKey("students.student_number"), unique=True)
    admitted_by: Mapped[str] = mapped_column(String(64))
    admitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NumberChange(Base):
    """R3: every change of a student's number — old, new, who, when, why (the mapping batch)."""

    __tablename__ = "number_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    old_number: Mapped[str] = mapped_column(String(20), index=True)
    new_number: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # mapping (考生号 → 学号)
    batch_id: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudentPhoto(Base):
    """R15: the student's current photo (one per student; a new upload replaces it, audited)."""

    __tablename__ = "student_photos"

    student_number: Mapped[str] = mapped_column(ForeignKey("students.student_number"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
