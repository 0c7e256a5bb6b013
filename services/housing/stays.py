"""Housing use cases that change who sleeps where: moves, swaps, bulk moves with a
preview (H3), initial assignment of an intake (H2: by hand, from Excel, or automatic),
check-in and check-out (H5). Every change keeps the occupancy history and is audited.

Every change takes `lock_students` before reading students and beds, as roster's status
handler does, so a leaving event and a change of the same student take turns instead of
missing each other (see `adapters/locks.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common import sheets
from services.common.audit import audit
from services.common.caller import HOUSING_CENTRE, Caller
from services.common.db import Database
from services.common.envelope import Actor, new_event
from services.common.errors import Conflict, Invalid, NotFound
from services.common.events import STUDENT_NUMBER, BedReleased
from services.common.outbox import record_event
from services.housing.adapters.locks import lock_students
from services.housing.adapters.orm import Bed, Building, Occupancy, Room, Student
from services.housing.domain.allocation import FreeBed, allocate
from services.housing.domain.end_reasons import CHECKED_OUT, MOVED, end_reason_label
from services.housing.domain.leaving import release_date
from services.housing.domain.moves import Move, MovePlan, MoveRequest, PlannedBed, plan_moves, swap_requests
from services.housing.handlers import (
    MAX_BATCH,
    _check_number,
    _iso,
    _visible_student,
    bed_view,
    occupancy_view,
    resident,
)

# Large IN lists are split so SQLite's bound-parameter limit is never reached.
CHUNK = 900


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), CHUNK):
        yield values[i:i + CHUNK]


def room_label(bed: Bed) -> str:
    return f"{bed.room.building.name}-{bed.room.room_no}"


def planned(bed: Bed) -> PlannedBed:
    return PlannedBed(bed.label, room_label(bed), bed.room.building.gender_policy, bed.allocated_to, bed.occupant)


# --- loading ---------------------------------------------------------------------------
def _students(s: Session, numbers: Sequence[str], lock: bool = True) -> dict[str, Student]:
    """The students' read copies, after taking their locks (unless only previewing)."""
    if lock:
        lock_students(s, numbers)
    found: dict[str, Student] = {}
    for part in _chunks(sorted(set(numbers))):
        for student in s.scalars(select(Student).where(Student.student_number.in_(part))):
            found[student.student_number] = student
    return found


def _beds_where(s: Session, *where: Any) -> list[Bed]:
    return list(s.scalars(select(Bed).where(*where).order_by(Bed.id).with_for_update(of=Bed)))


def _held_beds(s: Session, numbers: Sequence[str]) -> dict[str, Bed]:
    held: dict[str, Bed] = {}
    for part in _chunks(sorted(set(numbers))):
        for bed in _beds_where(s, Bed.occupant.in_(part)):
            held[bed.occupant or ""] = bed
    return held


def _split_room(target: str) -> tuple[str, str] | None:
    name, _, room_no = target.rpartition("-")
    return (name, room_no) if name and room_no else None


def _target_beds(s: Session, targets: set[str]) -> tuple[dict[str, Bed], dict[str, list[str]]]:
    """Beds named by label, and every bed of the rooms named by room label."""
    beds: dict[str, Bed] = {}
    for part in _chunks(sorted(targets)):
        for bed in _beds_where(s, Bed.label.in_(part)):
            beds[bed.label] = bed
    rooms: dict[str, list[str]] = {}
    wanted = {pair for t in targets - set(beds) if (pair := _split_room(t))}
    names = sorted({name for name, _ in wanted})
    if names:
        room_ids = [room.id for room in s.scalars(select(Room).join(Building).where(Building.name.in_(names)))
                    if (room.building.name, room.room_no) in wanted]
        for part in _chunks(room_ids):
            for bed in _beds_where(s, Bed.room_id.in_(part)):
                beds.setdefault(bed.label, bed)
                rooms.setdefault(room_label(bed), []).append(bed.label)
    return beds, rooms


def parse_requests(rows: Any) -> list[MoveRequest]:
    """RPC rows {student_number, target, override_reason?, row?} → requests."""
    if not isinstance(rows, list) or not rows:
        raise Invalid("请提供调整名单")
    if len(rows) > MAX_BATCH:
        raise Invalid(f"每次最多调整 {MAX_BATCH} 人")
    requests = []
    for i, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict):
            raise Invalid(f"第 {i} 条：数据格式不正确")
        number, target = raw.get("student_number"), raw.get("target")
        row = raw.get("row", i)
        if not isinstance(number, str) or not re.fullmatch(STUDENT_NUMBER, number.strip()):
            raise Invalid(f"第 {row} 条：学号格式不正确")
        if not isinstance(target, str) or not target.strip():
            raise Invalid(f"第 {row} 条：请填写目标床位或房间")
        reason = raw.get("override_reason")
        requests.append(MoveRequest(int(row), number.strip(), target.strip(),
                                    reason if isinstance(reason, str) and reason.strip() else None))
    return requests


def _plan(s: Session, requests: list[MoveRequest],
          lock: bool = True) -> tuple[MovePlan, dict[str, Bed], dict[str, Bed]]:
    numbers = [r.student_number for r in requests]
    students = _students(s, numbers, lock)
    held = _held_beds(s, numbers)
    beds, rooms = _target_beds(s, {r.target for r in requests})
    plan = plan_moves(requests, {n: resident(st) for n, st in students.items()},
                      {label: planned(bed) for label, bed in beds.items()}, rooms,
                      {n: bed.label for n, bed in held.items()})
    return plan, beds, held


def plan_view(plan: MovePlan) -> dict[str, Any]:
    return {
        "ok": plan.ok,
        "moves": [{"row": m.row, "student_number": m.student_number, "from": m.from_label, "to": m.to_label,
                   "override_reason": m.override_reason} for m in plan.moves],
        "problems": [{"row": p.row, "field": p.field, "kind": p.kind, "kind_label": p.kind_label,
                      "message": p.message} for p in plan.problems],
        "unchanged": plan.unchanged,
    }


def refusal_of(plan: MovePlan) -> Conflict:
    shown = "；".join(f"第 {p.row} 行：{p.message}" for p in plan.problems[:5])
    more = f"等 {len(plan.problems)} 处" if len(plan.problems) > 5 else f"{len(plan.problems)} 处"
    return Conflict(f"发现{more}冲突，未做任何调整。{shown}")


# --- applying --------------------------------------------------------------------------
def apply_plan(s: Session, caller: Caller, moves: Sequence[Move], beds: dict[str, Bed],
               held: dict[str, Bed], action: str, now: datetime) -> None:
    """Carry out checked moves in the caller's transaction: end the old stays, then
    fill the new beds (in that order, so no unique constraint sees a half-done swap)."""
    movers = [m.student_number for m in moves]
    open_stays: dict[str, Occupancy] = {}
    for part in _chunks(movers):
        for stay in s.scalars(select(Occupancy).where(Occupancy.student_number.in_(part),
                                                      Occupancy.ended_at.is_(None))):
            open_stays[stay.student_number] = stay
    for move in moves:
        old = held.get(move.student_number)
        if old is not None:
            old.occupant, old.occupied_since = None, None
        stay = open_stays.get(move.student_number)
        if stay is not None:
            stay.ended_at, stay.end_reason = now, MOVED
    s.flush()
    for move in moves:
        bed = beds[move.to_label]
        bed.occupant, bed.occupied_since = move.student_number, now
        previous = open_stays.get(move.student_number)
        s.add(Occupancy(bed_id=bed.id, student_number=move.student_number, started_at=now,
                        override_reason=move.override_reason,
                        checked_in_at=now if previous is not None and previous.checked_in_at else None))
        after: dict[str, Any] = {"bed": move.to_label, "since": _iso(now)}
        if move.override_reason:
            after["override_reason"] = move.override_reason
        audit(s, caller, action, move.student_number, {"bed": move.from_label}, after)
    try:
        s.flush()
    except IntegrityError:
        raise Conflict("床位正在被同时调整，请稍后重试") from None


def preview_moves(db: Database, caller: Caller, rows: Any) -> dict[str, Any]:
    """What a bulk move would do and every conflict it meets; changes nothing."""
    caller.require_role(HOUSING_CENTRE)
    requests = parse_requests(rows)
    with db.reading() as s:
        plan, _, _ = _plan(s, requests, lock=False)
        return plan_view(plan)


def move_many(db: Database, caller: Caller, rows: Any, action: str = "bed.move") -> dict[str, Any]:
    """Bulk moves and swaps (H3): all of them, or — at the first conflict — none."""
    caller.require_role(HOUSING_CENTRE)
    requests = parse_requests(rows)
    now = datetime.now(UTC)
    with db.transaction() as s:
        plan, beds, held = _plan(s, requests)
        if not plan.ok:
            raise refusal_of(plan)
        apply_plan(s, caller, plan.moves, beds, held, action, now)
        return plan_view(plan) | {"moved": len(plan.moves)}


def move_bed(db: Database, caller: Caller, student_number: Any, target: Any,
             override_reason: Any = None) -> dict[str, Any]:
    """A single move (or first assignment) to a bed or to any free bed of a room."""
    number = _check_number(student_number)
    rows = [{"student_number": number, "target": target, "override_reason": override_reason}]
    result = _single(db, caller, rows)
    return occupancy_of(db, number) | {"moved": result["moved"]}


def swap_beds(db: Database, caller: Caller, first: Any, second: Any) -> dict[str, Any]:
    """Two students exchange beds in one step."""
    caller.require_role(HOUSING_CENTRE)
    a, b = _check_number(first), _check_number(second)
    if a == b:
        raise Invalid("请选择两名不同的学生")
    with db.reading() as s:
        held = {bed.occupant: bed.label for bed in s.scalars(select(Bed).where(Bed.occupant.in_([a, b])))}
    for number in (a, b):
        if number not in held:
            raise Conflict(f"学生 {number} 当前没有床位，无法互换")
    rows = [{"student_number": r.student_number, "target": r.target}
            for r in swap_requests(a, held[a], b, held[b])]
    _single(db, caller, rows, action="bed.swap")
    return {"swapped": [occupancy_of(db, a), occupancy_of(db, b)]}


def _single(db: Database, caller: Caller, rows: list[dict[str, Any]], action: str = "bed.move") -> dict[str, Any]:
    caller.require_role(HOUSING_CENTRE)
    requests = parse_requests(rows)
    now = datetime.now(UTC)
    with db.transaction() as s:
        plan, beds, held = _plan(s, requests)
        if not plan.ok:
            problem = plan.problems[0]
            if problem.kind == "student":
                raise NotFound(problem.message)
            if problem.kind in ("double_booking", "capacity"):
                raise Conflict(problem.message)
            raise Invalid(problem.message)
        apply_plan(s, caller, plan.moves, beds, held, action, now)
        return {"moved": len(plan.moves)}


def occupancy_of(db: Database, number: str) -> dict[str, Any]:
    with db.reading() as s:
        return occupancy_view(number, s.scalar(select(Bed).where(Bed.occupant == number)))


# --- automatic allocation of an intake (H2) ----------------------------------------------
def _intake(s: Session, selection: Any, lock: bool) -> list[Student]:
    if not isinstance(selection, dict):
        raise Invalid("请指定要分配的学生范围")
    query = select(Student).where(Student.left.is_(False),
                                  Student.student_number.not_in(select(Bed.occupant).where(Bed.occupant.is_not(None))))
    year, colleges, classes = selection.get("entry_year"), selection.get("college_codes"), selection.get("class_codes")
    if year:
        if not isinstance(year, str) or not re.fullmatch(r"\d{4}", year):
            raise Invalid("入学年份必须是 4 位数字")
        query = query.where(Student.class_code.startswith(year))
    if colleges:
        query = query.where(Student.college_code.in_([str(c) for c in colleges]))
    if classes:
        query = query.where(Student.class_code.in_([str(c) for c in classes]))
    if not (year or colleges or classes):
        raise Invalid("请至少指定入学年份、学院或班级之一")
    students = list(s.scalars(query.order_by(Student.student_number)))
    if lock:
        lock_students(s, [st.student_number for st in students])
        # Read again under the lock: a student may have left meanwhile.
        s.expire_all()
        students = list(s.scalars(query.order_by(Student.student_number)))
    return students


def _free_beds(s: Session) -> tuple[list[Bed], dict[str, set[str]]]:
    beds = list(s.scalars(select(Bed).join(Room, Room.id == Bed.room_id).where(Bed.occupant.is_(None))
                          .order_by(Room.building_code, Room.floor, Room.room_no, Bed.bed_no)
                          .with_for_update(of=Bed)))
    genders: dict[str, set[str]] = {}
    rows = s.execute(select(Building.name, Room.room_no, Student.gender)
                     .select_from(Bed).join(Room, Room.id == Bed.room_id).join(Building)
                     .join(Student, Student.student_number == Bed.occupant)
                     .where(Building.gender_policy == "mixed"))
    for name, room_no, gender in rows:
        genders.setdefault(f"{name}-{room_no}", set()).add(gender)
    return beds, genders


def allocate_intake(db: Database, caller: Caller, selection: Any, apply: bool = False) -> dict[str, Any]:
    """Place every student of the selection who has no bed: preview, or apply as one step."""
    caller.require_role(HOUSING_CENTRE)
    now = datetime.now(UTC)
    with (db.transaction() if apply else db.reading()) as s:
        students = _intake(s, selection, lock=apply)
        beds, genders = _free_beds(s)
        result = allocate([resident(st) for st in students],
                          [FreeBed(b.label, room_label(b), b.room.building.gender_policy, b.allocated_to)
                           for b in beds], genders)
        if apply and result.placed:
            moves = [Move(i, n, None, label) for i, (n, label) in enumerate(result.placed, start=1)]
            apply_plan(s, caller, moves, {bed.label: bed for bed in beds}, {}, "bed.allocate", now)
        return {"placed": len(result.placed), "applied": apply and bool(result.placed),
                "unplaced": [{"student_number": n, "reason": why} for n, why in result.unplaced],
                "sample": [{"student_number": n, "to": label} for n, label in result.placed[:50]]}


# --- check-in and check-out (H5) ---------------------------------------------------------
def check_in(db: Database, caller: Caller, student_number: Any) -> dict[str, Any]:
    """The student has arrived in the assigned bed (a repeat changes nothing)."""
    caller.require_role(HOUSING_CENTRE)
    number = _check_number(student_number)
    now = datetime.now(UTC)
    with db.transaction() as s:
        _students(s, [number])
        stay = s.scalar(select(Occupancy).where(Occupancy.student_number == number, Occupancy.ended_at.is_(None)))
        if stay is None:
            raise Conflict(f"学生 {number} 当前没有床位，无法办理入住")
        if stay.checked_in_at is None:
            stay.checked_in_at = now
            audit(s, caller, "bed.check_in", number, {"checked_in_at": None},
                  {"bed": stay.bed.label, "checked_in_at": _iso(now)})
        return {"student_number": number, "bed": bed_view(stay.bed), "checked_in_at": _iso(stay.checked_in_at)}


def _check_out(s: Session, caller: Caller, bed: Bed, number: str, now: datetime) -> None:
    stay = s.scalar(select(Occupancy).where(Occupancy.bed_id == bed.id, Occupancy.ended_at.is_(None)))
    if stay is not None:
        stay.ended_at, stay.end_reason = now, CHECKED_OUT
    audit(s, caller, "bed.check_out", number, {"bed": bed.label, "since": _iso(bed.occupied_since)}, {"bed": None})
    record_event(s, new_event(
        "housing.bed_released",
        BedReleased(student_number=number, bed_label=bed.label, released_on=release_date(now), reason=CHECKED_OUT),
        source="housing", actor=Actor(kind="user", id=caller.username[:64]), correlation_id=caller.correlation_id))
    bed.occupant, bed.occupied_since = None, None


def check_out(db: Database, caller: Caller, student_number: Any) -> dict[str, Any]:
    caller.require_role(HOUSING_CENTRE)
    number = _check_number(student_number)
    now = datetime.now(UTC)
    with db.transaction() as s:
        if not _students(s, [number]):
            raise NotFound("学生不存在")
        bed = s.scalar(select(Bed).where(Bed.occupant == number).with_for_update(of=Bed))
        if bed is None:
            raise Conflict(f"学生 {number} 当前没有床位，无需退宿")
        _check_out(s, caller, bed, number, now)
    return {"student_number": number, "checked_out": True}


def check_out_many(db: Database, caller: Caller, selection: Any) -> dict[str, Any]:
    """Bulk check-out (H5) of listed students or of a whole entry year. Students whose
    bed is already released (e.g. by their graduation event) are counted, not refused."""
    caller.require_role(HOUSING_CENTRE)
    if not isinstance(selection, dict):
        raise Invalid("请指定退宿学生")
    numbers, year = selection.get("student_numbers"), selection.get("entry_year")
    now = datetime.now(UTC)
    with db.transaction() as s:
        if numbers:
            if not isinstance(numbers, list) or len(numbers) > MAX_BATCH * 4:
                raise Invalid(f"每次最多退宿 {MAX_BATCH * 4} 人")
            wanted = sorted({_check_number(n) for n in numbers})
        elif isinstance(year, str) and re.fullmatch(r"\d{4}", year):
            wanted = list(s.scalars(select(Student.student_number).where(Student.class_code.startswith(year))
                                    .order_by(Student.student_number)))
        else:
            raise Invalid("请提供学号名单或 4 位入学年份")
        students = _students(s, wanted)
        unknown = [n for n in wanted if n not in students]
        if unknown:
            raise NotFound(f"以下学生不存在：{'、'.join(unknown[:10])}{' 等' if len(unknown) > 10 else ''}")
        held = _held_beds(s, wanted)
        for number in sorted(held):
            _check_out(s, caller, held[number], number, now)
        return {"checked_out": len(held), "without_bed": len(wanted) - len(held)}


def checked_out(db: Database, caller: Caller, student_number: Any) -> dict[str, Any]:
    """For the clearance system: has the student given back every bed (H5)?"""
    number = _check_number(student_number)
    with db.reading() as s:
        _visible_student(s, caller, number)
        bed = s.scalar(select(Bed.label).where(Bed.occupant == number))
        last = s.scalar(select(Occupancy).where(Occupancy.student_number == number)
                        .order_by(Occupancy.started_at.desc(), Occupancy.id.desc()).limit(1))
        return {"student_number": number, "checked_out": bed is None, "bed_label": bed,
                "last_ended_at": _iso(last.ended_at) if last is not None else None,
                "last_end_reason": last.end_reason if last is not None else None,
                "last_end_reason_label": end_reason_label(last.end_reason) if last is not None else ""}


# --- initial assignment from Excel (H2) ------------------------------------------------------
ASSIGNMENT_COLUMNS = (
    sheets.Column("student_number", "学号", required=True, text=True),
    sheets.Column("target", "床位或房间", required=True, text=True,
                  note="床位编号（如 1号楼-101-1）或房间（如 1号楼-101，自动选空床位）"),
    sheets.Column("override_reason", "跨学院原因", note="房间分配给其他学院时必须填写"),
)


def assignment_template() -> bytes:
    return sheets.template(ASSIGNMENT_COLUMNS, "新生床位分配导入模板",
                           example={"student_number": "202601010101", "target": "1号楼-101-1"})


def import_assignments(db: Database, caller: Caller, data: bytes, apply: bool = False) -> dict[str, Any]:
    """Check an assignment workbook cell by cell (and, with `apply` and no error, carry it
    out as one step). With errors, nothing changes and the workbook comes back annotated."""
    caller.require_role(HOUSING_CENTRE)
    errors: list[sheets.CellError] = []
    rows: list[dict[str, Any]] = []
    values_at: dict[int, dict[str, str]] = {}
    for row, values in sheets.read_rows(data, ASSIGNMENT_COLUMNS):
        values_at[row] = values
        number = values.get("student_number", "")
        if not re.fullmatch(STUDENT_NUMBER, number):
            errors.append(_cell(row, "student_number", number, "学号格式不正确"))
        elif not values.get("target"):
            errors.append(_cell(row, "target", "", "请填写床位或房间"))
        else:
            rows.append({"row": row, "student_number": number, "target": values["target"],
                         "override_reason": values.get("override_reason") or None})
    if len(values_at) > MAX_BATCH:
        raise Invalid(f"每次最多导入 {MAX_BATCH} 行")
    if not values_at:
        raise Invalid("表格中没有数据")
    now = datetime.now(UTC)
    with (db.transaction() if apply else db.reading()) as s:
        plan = MovePlan()
        if rows:
            plan, beds, held = _plan(s, parse_requests(rows), lock=apply)
        for p in plan.problems:
            errors.append(_cell(p.row, p.field, values_at[p.row].get(p.field, ""), p.message))
        if errors:
            errors.sort(key=lambda e: (e.row, e.column))
            return {"ok": False, "applied": 0, "errors": [
                {"row": e.row, "column": e.column, "header": e.header, "value": e.value, "message": e.message}
                for e in errors], "annotated": sheets.annotate(data, ASSIGNMENT_COLUMNS, errors)}
        if apply:
            apply_plan(s, caller, plan.moves, beds, held, "bed.import", now)
        return {"ok": True, "applied": len(plan.moves) if apply else 0, "errors": [],
                **plan_view(plan)}


def _cell(row: int, key: str, value: Any, message: str) -> sheets.CellError:
    column = next(c for c in ASSIGNMENT_COLUMNS if c.key == key)
    return sheets.CellError(row, sheets.column_letter(ASSIGNMENT_COLUMNS, key), column.header, value, message)
