"""Housing use cases: the bed inventory, assignment, reading who sleeps where, and
releasing beds when roster says a student has left (H5)."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import (
    ACADEMIC_AFFAIRS,
    COUNSELOR,
    DEPUTY_SECRETARY,
    HOUSING_CENTRE,
    STUDENT_AFFAIRS,
    SYSTEM,
    Caller,
    system_caller,
)
from services.common.db import Database
from services.common.envelope import Actor, Envelope, new_event
from services.common.errors import Conflict, Forbidden, Invalid, NotFound, XuejiError
from services.common.events import (
    STUDENT_NUMBER,
    BedReleased,
    StudentClassChanged,
    StudentRegistered,
    StudentStatusChanged,
)
from services.common.health import health_report
from services.common.inbox import first_deliveries, first_delivery
from services.common.models import AuditEntry
from services.common.number_aliases import current_numbers, renumbered
from services.common.outbox import record_event
from services.common.student_copy import copy_class_change, copy_registration, read_copies
from services.housing.adapters.locks import lock_student, lock_students
from services.housing.adapters.orm import Bed, Building, EarlyStatusChange, Occupancy, Room, Student
from services.housing.domain.assignment import BedState, Resident, check_assignment, clean_reason
from services.housing.domain.end_reasons import end_reason_label
from services.housing.domain.inventory import (
    BedSpec,
    KnownBed,
    KnownBuilding,
    KnownRoom,
    parse_bed_spec,
    plan_new_beds,
)
from services.housing.domain.leaving import (
    StatusNews,
    is_newer_change,
    release_date,
    release_reason,
    releases_bed,
    restore_refusal,
    restores_bed,
    suspension_releases_setting,
)
from services.housing.domain.refusal import Refusal

log = logging.getLogger(__name__)

SERVICE = "housing"
ACTOR = Actor(kind="system", id=SERVICE)
# Roles that see every student's housing; others only students their scope covers (H4).
WHOLE_VIEW = (HOUSING_CENTRE, STUDENT_AFFAIRS, SYSTEM)
MAX_BATCH = 5000


def _error(refusal: Refusal) -> XuejiError:
    return Conflict(refusal.message) if refusal.conflict else Invalid(refusal.message)


def _check_number(student_number: Any) -> str:
    if not isinstance(student_number, str) or not re.fullmatch(STUDENT_NUMBER, student_number):
        raise Invalid("学号格式不正确")
    return student_number


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    # SQLite hands back naive datetimes; every stored time is UTC.
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


# --- views -----------------------------------------------------------------------------
def bed_view(bed: Bed) -> dict[str, Any]:
    return {
        "label": bed.label,
        "building_code": bed.room.building_code,
        "building_name": bed.room.building.name,
        "room_no": bed.room.room_no,
        "bed_no": bed.bed_no,
        "since": _iso(bed.occupied_since),
    }


def occupancy_view(student_number: str, bed: Bed | None) -> dict[str, Any]:
    return {"student_number": student_number, "bed": bed_view(bed) if bed is not None else None}


def stay_view(stay: Occupancy) -> dict[str, Any]:
    bed = stay.bed
    return {
        "student_number": stay.student_number,
        "bed_label": bed.label,
        "building_code": bed.room.building_code,
        "building_name": bed.room.building.name,
        "room_no": bed.room.room_no,
        "bed_no": bed.bed_no,
        "started_at": _iso(stay.started_at),
        "ended_at": _iso(stay.ended_at),
        "end_reason": stay.end_reason,
        "end_reason_label": end_reason_label(stay.end_reason),
        "checked_in_at": _iso(stay.checked_in_at),
    }


# --- access ----------------------------------------------------------------------------
def _visible_student(s: Session, caller: Caller, student_number: str) -> Student:
    """The student, if the caller may see their housing (H4, I6)."""
    student = s.get(Student, student_number)
    if student is None:
        # Scoped staff must not learn which numbers exist outside their scope.
        own = caller.scope.kind == "self" and student_number in caller.scope.ids
        if caller.role in WHOLE_VIEW or caller.scope.kind == "institution" or own:
            raise NotFound("学生不存在")
        raise Forbidden(f"学生 {student_number} 不在您的数据权限范围内")
    if caller.role not in WHOLE_VIEW:
        caller.require_student(student.student_number, student.college_code, student.class_code)
    return student


# --- RPC use cases ---------------------------------------------------------------------
def health(db: Database) -> dict[str, Any]:
    occupied = select(Bed.id).where(Bed.occupant.is_not(None)).subquery()
    return health_report(db, SERVICE, beds=Bed, occupied=occupied, students_known=Student)


def _inventory(s: Session, specs: list[BedSpec]) -> tuple[
        dict[str, Building], dict[tuple[str, str], Room], dict[int, int], dict[str, KnownBed]]:
    codes = {spec.building_code for spec in specs}
    buildings = {b.code: b for b in s.scalars(select(Building).where(Building.code.in_(codes)))}
    rooms = {(r.building_code, r.room_no): r
             for r in s.scalars(select(Room).where(Room.building_code.in_(codes)))}
    counts = {room_id: n for room_id, n in s.execute(
        select(Bed.room_id, func.count()).join(Room, Room.id == Bed.room_id)
        .where(Room.building_code.in_(codes)).group_by(Bed.room_id))}
    beds = {b.label: KnownBed(b.room.building_code, b.room.room_no, b.bed_no)
            for b in s.scalars(select(Bed).where(Bed.label.in_({spec.label for spec in specs})))}
    return buildings, rooms, counts, beds


def create_beds(db: Database, caller: Caller, beds: Any) -> dict[str, Any]:
    """Add beds (and their buildings and rooms) to the inventory; beds already there are
    skipped, so the same list can be sent again. All or nothing."""
    caller.require_role(HOUSING_CENTRE)
    if not isinstance(beds, list) or not beds:
        raise Invalid("请提供床位列表")
    if len(beds) > MAX_BATCH:
        raise Invalid(f"每次最多登记 {MAX_BATCH} 张床位")
    try:
        specs = [parse_bed_spec(raw, row) for row, raw in enumerate(beds, start=1)]
    except Refusal as refusal:
        raise _error(refusal) from None
    with db.transaction() as s:
        return add_beds(s, caller, specs)


def add_beds(s: Session, caller: Caller, specs: list[BedSpec]) -> dict[str, Any]:
    """`create_beds` inside the caller's transaction (the Excel import adds room details in the same one)."""
    buildings, rooms, counts, known_beds = _inventory(s, specs)
    try:
        plan = plan_new_beds(
            specs,
            {code: KnownBuilding(b.name, b.gender_policy) for code, b in buildings.items()},
            {key: KnownRoom(r.capacity, counts.get(r.id, 0)) for key, r in rooms.items()},
            known_beds,
        )
    except Refusal as refusal:
        raise _error(refusal) from None
    for spec in plan:
        if spec.building_code not in buildings:
            building = buildings[spec.building_code] = Building(
                code=spec.building_code, name=spec.building_name, gender_policy=spec.gender_policy)
            s.add(building)
            audit(s, caller, "building.create", spec.building_code, None,
                  {"name": spec.building_name, "gender_policy": spec.gender_policy})
        if spec.room_key not in rooms:
            room = rooms[spec.room_key] = Room(
                building=buildings[spec.building_code], room_no=spec.room_no, capacity=spec.capacity)
            s.add(room)
            audit(s, caller, "room.create", f"{spec.building_code}-{spec.room_no}", None,
                  {"capacity": spec.capacity})
        s.add(Bed(room=rooms[spec.room_key], bed_no=spec.bed_no, label=spec.label))
        audit(s, caller, "bed.create", spec.label, None,
              {"building_code": spec.building_code, "room_no": spec.room_no, "bed_no": spec.bed_no})
    try:
        s.flush()
    except IntegrityError:
        raise Conflict("床位正在被同时登记，请稍后重试") from None
    return {"created": len(plan)}


def resident(student: Student) -> Resident:
    return Resident(student.student_number, student.gender, student.left, student.college_code,
                    student.status, student.class_code)


def bed_state(bed: Bed) -> BedState:
    return BedState(bed.label, bed.room.building.gender_policy, bed.occupant, bed.allocated_to)


def assign_bed(db: Database, caller: Caller, student_number: Any, bed_label: Any,
               override_reason: Any = None) -> dict[str, Any]:
    """Put a student in a bed (a repeated request for the same bed changes nothing).
    A room allocated to another college takes the student only with a reason."""
    caller.require_role(HOUSING_CENTRE)
    number = _check_number(student_number)
    if not isinstance(bed_label, str) or not bed_label.strip():
        raise Invalid("请提供床位编号")
    label = bed_label.strip()
    try:
        reason = clean_reason(override_reason)
    except Refusal as refusal:
        raise _error(refusal) from None
    now = datetime.now(UTC)
    with db.transaction() as s:
        lock_student(s, number)
        student = s.get(Student, number)
        if student is None:
            raise NotFound("学生不存在")
        bed = s.scalar(select(Bed).where(Bed.label == label).with_for_update(of=Bed))
        if bed is None:
            raise NotFound(f"床位 {label} 不存在")
        current = s.scalar(select(Bed.label).where(Bed.occupant == number))
        try:
            needed = check_assignment(resident(student), bed_state(bed), current, reason)
        except Refusal as refusal:
            raise _error(refusal) from None
        if needed:
            bed.occupant = number
            bed.occupied_since = now
            s.add(Occupancy(bed_id=bed.id, student_number=number, started_at=now, override_reason=reason))
            after = {"bed": bed.label, "since": _iso(now)} | ({"override_reason": reason} if reason else {})
            audit(s, caller, "bed.assign", number, {"bed": None}, after)
            try:
                s.flush()
            except IntegrityError:
                raise Conflict(f"床位 {label} 正在被同时分配，请稍后重试") from None
        return occupancy_view(number, bed)


def occupancy(db: Database, caller: Caller, student_number: Any) -> dict[str, Any]:
    number = _check_number(student_number)
    with db.reading() as s:
        _visible_student(s, caller, number)
        bed = s.scalar(select(Bed).where(Bed.occupant == number))
        return occupancy_view(number, bed)


def bed_history(db: Database, caller: Caller, student_number: Any) -> list[dict[str, Any]]:
    number = _check_number(student_number)
    with db.reading() as s:
        _visible_student(s, caller, number)
        stays = s.scalars(select(Occupancy).where(Occupancy.student_number == number)
                          .order_by(Occupancy.started_at, Occupancy.id))
        return [stay_view(stay) for stay in stays]


def holders_who_left(db: Database, caller: Caller) -> list[dict[str, Any]]:
    """H5 report: students roster says have left who still hold a bed."""
    caller.require_role(HOUSING_CENTRE, STUDENT_AFFAIRS)
    with db.reading() as s:
        rows = s.execute(select(Student, Bed).join(Bed, Bed.occupant == Student.student_number)
                         .where(Student.left.is_(True)).order_by(Student.student_number))
        return [{"student_number": student.student_number, "name": student.name,
                 "college_code": student.college_code, "class_code": student.class_code,
                 "status": student.status, "bed": bed_view(bed)} for student, bed in rows]


# --- roster events ---------------------------------------------------------------------
def _lock_current(s: Session, numbers: Iterable[str]) -> dict[str, str]:
    """Each number's current number (a former one, R3, leads to the renamed student), with the
    students locked. A rename holds both numbers' locks, so numbers resolved again once the locks
    are held see a rename that committed while we waited; resolving stops when nothing new is found."""
    locked: set[str] = set()
    current = current_numbers(s, numbers)
    while missing := (set(current) | set(current.values())) - locked:
        lock_students(s, missing)
        locked |= missing
        current = current_numbers(s, current)
    return current


def on_student_registered(db: Database, envelope: Envelope) -> None:
    payload = StudentRegistered.model_validate(envelope.payload)
    now = datetime.now(UTC)
    with db.transaction() as s:
        if not first_delivery(s, envelope, "housing.on_student_registered"):
            return
        # A former number: the renamed student's copy, never a second one under the old number.
        number = _lock_current(s, (payload.student_number,))[payload.student_number]
        row = s.get(Student, number)
        if row is None:
            row = Student(student_number=number, last_change_id=None, updated_at=now)
            s.add(row)
        copy_registration(row, payload, envelope.occurred_at)  # unless it holds a newer snapshot
        early = s.get(EarlyStatusChange, number)
        if early is not None:
            if is_newer_change(row.last_change_id, early.change_id):
                row.status, row.left, row.last_change_id = early.new_status, early.left, early.change_id
            s.delete(early)
        row.updated_at = now


def _park_early_change(s: Session, number: str, news: StatusNews, now: datetime) -> None:
    early = s.get(EarlyStatusChange, number)
    if early is None:
        s.add(EarlyStatusChange(student_number=number, change_id=news.change_id,
                                new_status=news.new_status, left=news.left, received_at=now))
    elif is_newer_change(early.change_id, news.change_id):
        early.change_id, early.new_status, early.left = news.change_id, news.new_status, news.left
        early.received_at = now


def suspension_releases() -> bool:
    """The institution's choice for suspended students' beds (default: they keep them)."""
    return suspension_releases_setting(os.environ.get("HOUSING_SUSPENSION_RELEASES_BED"))


class SettingsError(RuntimeError):
    """A housing setting in the environment that cannot be read: the service must not start."""


def check_settings() -> dict[str, bool]:
    """Every housing setting read once, when the service starts: a mistyped value stops it there
    with the setting named, instead of failing each status change later (retried, then dead-lettered).
    Add any new housing environment setting here."""
    try:
        return {"suspension_releases": suspension_releases()}
    except ValueError as exc:
        log.critical("housing cannot start: %s", exc)
        raise SettingsError(f"housing cannot start: {exc}") from None


class _Batch:
    """What one transaction of status changes has loaded and changed, so events later in
    the batch see the effects of earlier ones (nothing is flushed until the end)."""

    def __init__(self, beds: dict[str | None, Bed], stays: dict[int, Occupancy],
                 released: dict[int, Occupancy], suspension_releases: bool) -> None:
        self.beds = beds  # by occupant
        self.stays = stays  # open stays by bed id
        self.released = released  # ended stays by the change that ended them
        self.suspension_releases = suspension_releases


def _release(s: Session, bed: Bed, number: str, reason: str, now: datetime, envelope: Envelope,
             stays: dict[int, Occupancy] | None = None, change_id: int | None = None) -> Occupancy | None:
    """End the student's stay, free the bed and tell roster, in the caller's transaction;
    returns the ended stay.

    `stays`: the open stays by bed id, when a batch has fetched them already.
    `change_id`: roster's status change that released it (kept on the stay for its revocation).
    """
    if stays is not None:
        stay = stays.pop(bed.id, None)
    else:
        stay = s.scalar(select(Occupancy).where(Occupancy.bed_id == bed.id, Occupancy.student_number == number,
                                                Occupancy.ended_at.is_(None)))
    if stay is None:
        log.error("bed %s held by %s has no open stay; freeing it anyway", bed.label, number)
    else:
        stay.ended_at = now
        stay.end_reason = reason
        stay.released_by_change_id = change_id
    before = {"bed": bed.label, "since": _iso(bed.occupied_since)}
    bed.occupant = None
    bed.occupied_since = None
    record_event(s, new_event(
        "housing.bed_released",
        BedReleased(student_number=number, bed_label=bed.label, released_on=release_date(now), reason=reason),
        source=SERVICE, actor=ACTOR, correlation_id=envelope.correlation_id,
    ))
    audit(s, system_caller(SERVICE, envelope.correlation_id), "bed.release", number, before,
          {"bed": None, "reason": reason, "event_id": str(envelope.event_id)})
    return stay


def on_student_status_changed(db: Database, *envelopes: Envelope) -> None:
    """Apply roster's status changes to the read copy, release beds (H5) and give them back
    when the change that released them is revoked. Several events (a batch) apply in one
    transaction, all or none."""
    releases_on_suspension = suspension_releases()
    with db.transaction() as s, s.no_autoflush:
        fresh = first_deliveries(s, envelopes, "housing.on_student_status_changed")
        payloads = [StudentStatusChanged.model_validate(e.payload) for e in fresh]
        # the lock order every housing change uses; a former number's change goes to the renamed student
        payloads = renumbered(payloads, _lock_current(s, {p.student_number for p in payloads}))
        numbers = sorted({p.student_number for p in payloads})
        students = read_copies(s, Student, numbers)
        beds = {b.occupant: b for b in s.scalars(
            select(Bed).where(Bed.occupant.in_(numbers)).with_for_update(of=Bed))} if numbers else {}
        stays = {o.bed_id: o for o in s.scalars(select(Occupancy).where(
            Occupancy.student_number.in_(numbers), Occupancy.ended_at.is_(None)))} if numbers else {}
        batch = _Batch(beds, stays, _released_stays(s, payloads), releases_on_suspension)
        for envelope, payload in zip(fresh, payloads, strict=True):
            _apply_status_change(s, envelope, payload, students.get(payload.student_number), batch)


def _released_stays(s: Session, payloads: list[StudentStatusChanged]) -> dict[int, Occupancy]:
    """The stays ended by the changes this batch revokes, their beds locked and re-read:
    an assignment committed meanwhile must be seen before a bed is given back."""
    revoked = {p.revokes_change_id for p in payloads if p.revokes_change_id is not None}
    if not revoked:
        return {}
    found = {o.released_by_change_id: o for o in s.scalars(
        select(Occupancy).where(Occupancy.released_by_change_id.in_(revoked)))}
    bed_ids = {o.bed_id for o in found.values()}
    if bed_ids:
        s.scalars(select(Bed).where(Bed.id.in_(bed_ids)).with_for_update(of=Bed)
                  .execution_options(populate_existing=True)).all()
    return {change_id: stay for change_id, stay in found.items() if change_id is not None}


def _apply_status_change(s: Session, envelope: Envelope, payload: StudentStatusChanged,
                         student: Student | None, batch: _Batch) -> None:
    number = payload.student_number
    news = StatusNews(change_id=payload.change_id, new_status=payload.new_status, left=payload.left,
                      revokes_change_id=payload.revokes_change_id)
    now = datetime.now(UTC)
    if student is None:
        # Its registration is still on its way (another queue); it holds no bed here.
        _park_early_change(s, number, news, now)
        log.warning("status change %s for %s arrived before the registration; kept for it",
                    news.change_id, number)
        return
    if not is_newer_change(student.last_change_id, news.change_id):
        log.info("status change %s for %s is older than change %s; ignored",
                 news.change_id, number, student.last_change_id)
        return
    student.status = news.new_status
    student.left = news.left
    student.last_change_id = news.change_id
    student.updated_at = now
    bed = batch.beds.get(number)
    if bed is not None and releases_bed(news, holds_bed=True, suspension_releases=batch.suspension_releases):
        stay = _release(s, bed, number, release_reason(news), now, envelope, batch.stays, news.change_id)
        del batch.beds[number]
        if stay is not None:
            batch.released[news.change_id] = stay
    elif news.revokes_change_id is not None and restores_bed(news, suspension_releases=batch.suspension_releases):
        ended = batch.released.get(news.revokes_change_id)
        if ended is not None and ended.student_number == number:
            _restore(s, envelope, news, ended, batch, now)


def _restore(s: Session, envelope: Envelope, news: StatusNews, ended: Occupancy, batch: _Batch,
             now: datetime) -> None:
    """Give the student back the bed the revoked change released, if nobody holds it now."""
    number, bed = ended.student_number, ended.bed
    who = system_caller(SERVICE, envelope.correlation_id)
    refusal = restore_refusal(number in batch.beds, bed.occupant)
    if refusal == "already_housed":
        log.info("revocation %s: %s already holds a bed; %s not given back", news.change_id, number, bed.label)
        return
    if refusal == "bed_taken":
        log.warning("revocation %s: bed %s of %s is now held by %s; the student is left without a bed",
                    news.change_id, bed.label, number, bed.occupant)
        audit(s, who, "bed.restore_failed", number, {"bed": None},
              {"bed": None, "wanted_bed": bed.label, "held_by": bed.occupant,
               "revokes_change_id": news.revokes_change_id, "event_id": str(envelope.event_id)})
        return
    stay = Occupancy(bed_id=bed.id, student_number=number, started_at=now, checked_in_at=ended.checked_in_at,
                     override_reason=ended.override_reason)
    s.add(stay)
    bed.occupant = number
    bed.occupied_since = now
    batch.beds[number] = bed
    batch.stays[bed.id] = stay
    audit(s, who, "bed.restore", number, {"bed": None},
          {"bed": bed.label, "since": _iso(now), "revokes_change_id": news.revokes_change_id,
           "event_id": str(envelope.event_id)})


# --- revocations the housing centre must see; beds for roster's lists ----------------------
def restore_problems(db: Database, caller: Caller) -> list[dict[str, Any]]:
    """Students whose revoked leaving (or suspension) could not give their bed back because
    someone else holds it now, and who still have no bed and have not left again."""
    caller.require_role(HOUSING_CENTRE, STUDENT_AFFAIRS)
    with db.reading() as s:
        rows = s.execute(
            select(AuditEntry, Student).join(Student, Student.student_number == AuditEntry.target)
            .outerjoin(Bed, Bed.occupant == Student.student_number)
            .where(AuditEntry.action == "bed.restore_failed", Bed.id.is_(None), Student.left.is_(False))
            .order_by(AuditEntry.id))
        latest: dict[str, dict[str, Any]] = {}
        for entry, student in rows:
            after = json.loads(entry.after or "{}")
            latest[student.student_number] = {
                "student_number": student.student_number, "name": student.name,
                "college_code": student.college_code, "class_code": student.class_code,
                "status": student.status, "wanted_bed": after.get("wanted_bed"), "held_by": after.get("held_by"),
                "revokes_change_id": after.get("revokes_change_id"), "failed_at": _iso(entry.at)}
        return sorted(latest.values(), key=lambda row: row["student_number"])


BEDS_HELD_READERS = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, HOUSING_CENTRE, COUNSELOR, DEPUTY_SECRETARY)
MAX_BEDS_HELD = 10_000


def beds_held(db: Database, caller: Caller, student_numbers: Any) -> dict[str, dict[str, Any]]:
    """Which of these students hold a bed, and which (roster's pending-graduation list).
    Numbers outside the caller's scope, unknown or without a bed are simply absent."""
    caller.require_role(*BEDS_HELD_READERS)
    if not isinstance(student_numbers, list) or len(student_numbers) > MAX_BEDS_HELD:
        raise Invalid(f"请提供学号列表（每次最多 {MAX_BEDS_HELD} 个）")
    numbers = {_check_number(n) for n in student_numbers}
    if not numbers:
        return {}
    query = (select(Bed.occupant, Bed.label, Building.name, Room.room_no)
             .join(Room, Room.id == Bed.room_id).join(Building, Building.code == Room.building_code)
             .where(Bed.occupant.in_(numbers)))
    if caller.role not in WHOLE_VIEW and caller.scope.kind != "institution":
        column = {"classes": Student.class_code, "college": Student.college_code,
                  "self": Student.student_number}.get(caller.scope.kind)
        if column is None:
            return {}
        query = query.join(Student, Student.student_number == Bed.occupant).where(
            column.in_(caller.scope.ids))
    with db.reading() as s:
        return {number: {"bed_label": label, "building": building, "room": room}
                for number, label, building, room in s.execute(query)}


def on_student_class_changed(db: Database, envelope: Envelope) -> None:
    """调班 (R9): only the read copy follows; a class move does not move the student's bed."""
    payload = StudentClassChanged.model_validate(envelope.payload)
    with db.transaction() as s:
        if not first_delivery(s, envelope, "housing.on_student_class_changed"):
            return
        current = _lock_current(s, (payload.student_number,))
        copy_class_change(s, Student, renumbered((payload,), current)[0], envelope.occurred_at)
