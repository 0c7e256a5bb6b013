"""Moves, swaps, bulk moves, allocation, imports and check-out against a real, migrated
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import BytesIO
from typing import Any

import eventlet
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry, OutboxMessage
from services.housing import estate, handlers, stays
from services.housing.adapters import locks
from services.housing.adapters.orm import Bed, Occupancy
from services.housing.tests.factories import caller, registered, room_beds, status_changed

A, B, C = "202301010101", "202301010103", "202301010105"  # men, class 2023010101, college 01
W = "202301010102"  # a woman of the same class
MATHS = "202302010101"  # a man of college 02
CENTRE = caller("housing_centre")


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("housing")


@pytest.fixture
def campus(db: Database) -> Database:
    beds = room_beds("B1", "1号楼", "M", "101") + room_beds("B1", "1号楼", "M", "102", capacity=2, beds=2) \
        + room_beds("B2", "2号楼", "F", "101") + room_beds("B1", "1号楼", "M", "201", capacity=2, beds=2)
    handlers.create_beds(db, CENTRE, beds)
    estate.allocate_rooms(db, CENTRE, [{"building_code": "B1", "room_no": "201"}], "02")
    for number, gender in ((A, "1"), (B, "1"), (C, "1"), (W, "2")):
        handlers.on_student_registered(db, registered(number, gender=gender, klass="2023010101"))
    handlers.on_student_registered(db, registered(MATHS, gender="1", klass="2023020101"))
    handlers.assign_bed(db, CENTRE, A, "1号楼-101-1")
    handlers.assign_bed(db, CENTRE, B, "1号楼-101-2")
    return db


def where(db: Database) -> dict[str, str]:
    with db.reading() as s:
        return {occupant: label for occupant, label in s.execute(
            select(Bed.occupant, Bed.label).where(Bed.occupant.is_not(None)))}


def count(db: Database, model: Any, *conditions: Any) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


def actions(db: Database, action: str) -> list[AuditEntry]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_a_move_ends_the_old_stay_starts_a_new_one_and_is_audited(campus: Database) -> None:
    result = stays.move_bed(campus, CENTRE, A, "1号楼-102-1")
    assert result["bed"]["label"] == "1号楼-102-1"
    history = handlers.bed_history(campus, CENTRE, A)
    assert [(h["bed_label"], h["end_reason"]) for h in history] == [("1号楼-101-1", "moved"), ("1号楼-102-1", None)]
    [entry] = actions(campus, "bed.move")
    assert (json.loads(entry.before or "")["bed"], json.loads(entry.after or "")["bed"]) == \
        ("1号楼-101-1", "1号楼-102-1")


def test_a_move_to_a_room_takes_a_free_bed_of_it(campus: Database) -> None:
    stays.move_bed(campus, CENTRE, C, "1号楼-101")
    assert where(campus)[C] == "1号楼-101-3"


def test_a_move_into_another_colleges_room_needs_a_reason(campus: Database) -> None:
    with pytest.raises(Invalid, match="请填写调整原因"):
        stays.move_bed(campus, CENTRE, A, "1号楼-201-1")
    stays.move_bed(campus, CENTRE, A, "1号楼-201-1", "学院宿舍已满")
    with campus.reading() as s:
        stay = s.scalar(select(Occupancy).where(Occupancy.student_number == A, Occupancy.ended_at.is_(None)))
        assert stay is not None and stay.override_reason == "学院宿舍已满"
    assert json.loads(actions(campus, "bed.move")[0].after or "")["override_reason"] == "学院宿舍已满"
    handlers.assign_bed(campus, CENTRE, MATHS, "1号楼-201-2")  # its own college: no reason needed


def test_a_swap_exchanges_two_beds(campus: Database) -> None:
    stays.swap_beds(campus, CENTRE, A, B)
    assert where(campus) == {A: "1号楼-101-2", B: "1号楼-101-1"}
    assert len(actions(campus, "bed.swap")) == 2
    with pytest.raises(Conflict, match=f"学生 {C} 当前没有床位"):
        stays.swap_beds(campus, CENTRE, A, C)


def test_bulk_moves_with_one_conflict_move_nobody(campus: Database) -> None:
    rows = [{"student_number": A, "target": "1号楼-101-2"}, {"student_number": B, "target": "1号楼-101-1"},
            {"student_number": C, "target": "1号楼-102-1"}, {"student_number": W, "target": "1号楼-102-2"}]
    preview = stays.preview_moves(campus, CENTRE, rows)
    assert preview["ok"] is False
    assert [(p["row"], p["kind"], p["kind_label"]) for p in preview["problems"]] == [(4, "gender", "性别")]
    assert len(preview["moves"]) == 3
    before = where(campus)
    with pytest.raises(Conflict, match="发现1 处冲突，未做任何调整。第 4 行：床位 1号楼-102-2 所在楼栋为男生楼"):
        stays.move_many(campus, CENTRE, rows)
    assert where(campus) == before
    assert count(campus, Occupancy) == 2 and actions(campus, "bed.move") == []

    rows[3]["target"] = "2号楼-101-1"
    assert stays.move_many(campus, CENTRE, rows)["moved"] == 4
    assert where(campus) == {A: "1号楼-101-2", B: "1号楼-101-1", C: "1号楼-102-1", W: "2号楼-101-1"}
    assert count(campus, Occupancy, Occupancy.ended_at.is_(None)) == 4


def test_bulk_move_preview_reports_capacity_and_double_booking(campus: Database) -> None:
    rows = [{"student_number": C, "target": "1号楼-102"}, {"student_number": W, "target": "2号楼-101-1"},
            {"student_number": MATHS, "target": "1号楼-101-1"}]
    preview = stays.preview_moves(campus, CENTRE, [*rows, {"student_number": A, "target": "1号楼-102"},
                                                   {"student_number": B, "target": "1号楼-102"}])
    assert [(p["row"], p["kind"]) for p in preview["problems"]] == [(5, "capacity")]
    preview = stays.preview_moves(campus, CENTRE, rows)
    assert [(p["row"], p["kind"]) for p in preview["problems"]] == [(3, "double_booking")]


def test_only_the_housing_centre_moves(campus: Database) -> None:
    for role in ("counselor", "student_affairs", "deputy_secretary"):
        with pytest.raises(Forbidden):
            stays.move_many(campus, caller(role), [{"student_number": A, "target": "1号楼-102-1"}])
    with pytest.raises(NotFound, match="学生 202301019999 不存在"):
        stays.move_bed(campus, CENTRE, "202301019999", "1号楼-102-1")


def test_check_in_and_check_out_keep_the_history_and_tell_roster(campus: Database) -> None:
    assert stays.check_in(campus, CENTRE, A)["checked_in_at"] is not None
    stays.check_in(campus, CENTRE, A)
    assert len(actions(campus, "bed.check_in")) == 1
    assert stays.checked_out(campus, CENTRE, A)["checked_out"] is False
    stays.check_out(campus, CENTRE, A)
    answer = stays.checked_out(campus, caller("student_affairs"), A)
    assert (answer["checked_out"], answer["last_end_reason"]) == (True, "checked_out")
    with campus.reading() as s:
        [event] = [json.loads(m.body) for m in s.scalars(select(OutboxMessage))]
    assert (event["type"], event["payload"]["reason"], event["payload"]["bed_label"]) == \
        ("housing.bed_released", "checked_out", "1号楼-101-1")
    with pytest.raises(Conflict, match="当前没有床位"):
        stays.check_out(campus, CENTRE, A)


def test_bulk_check_out_of_a_cohort_skips_beds_already_released(campus: Database) -> None:
    handlers.on_student_status_changed(campus, status_changed(B, 5, "graduated", left=True))
    result = stays.check_out_many(campus, CENTRE, {"entry_year": "2023"})
    assert result == {"checked_out": 1, "without_bed": 4}
    assert where(campus) == {}
    with pytest.raises(NotFound, match="202301019999"):
        stays.check_out_many(campus, CENTRE, {"student_numbers": [A, "202301019999"]})


@pytest.mark.parametrize("student_locks", [200, 5], ids=["advisory-locks", "table-lock"])
def test_bulk_check_out_and_leaving_events_at_once_release_each_bed_once(
        campus: Database, student_locks: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locks, "MAX_STUDENT_LOCKS", student_locks)
    numbers = [f"2023010102{n:02d}" for n in range(1, 41)]
    handlers.create_beds(campus, CENTRE, [
        {"building_code": "B9", "building_name": "9号楼", "gender_policy": "M", "room_no": str(300 + n // 4),
         "capacity": 4, "bed_no": str(n % 4 + 1)} for n in range(40)])
    for number in numbers:
        handlers.on_student_registered(campus, registered(number, gender="1", klass="2023010102"))
    stays.allocate_intake(campus, CENTRE, {"class_codes": ["2023010102"]}, apply=True)
    pool = eventlet.GreenPool(8)
    events = [pool.spawn(handlers.on_student_status_changed, campus, status_changed(n, 7, "graduated"))
              for n in numbers[::2]]
    result = stays.check_out_many(campus, CENTRE, {"student_numbers": numbers})
    for green in events:
        green.wait()
    assert result["checked_out"] + result["without_bed"] == 40
    with campus.reading() as s:
        released = [json.loads(m.body)["payload"]["student_number"]
                    for m in s.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "housing.bed_released"))]
    assert sorted(released) == numbers
    assert count(campus, Occupancy, Occupancy.student_number.in_(numbers), Occupancy.ended_at.is_(None)) == 0


def test_automatic_allocation_previews_then_applies(campus: Database) -> None:
    preview = stays.allocate_intake(campus, CENTRE, {"entry_year": "2023"})
    assert preview["applied"] is False and preview["placed"] == 3  # C, W, MATHS; A and B have beds
    assert count(campus, Occupancy) == 2
    result = stays.allocate_intake(campus, CENTRE, {"entry_year": "2023"}, apply=True)
    assert result["applied"] is True
    placed = where(campus)
    assert placed[W].startswith("2号楼") and placed[MATHS].startswith("1号楼-201")
    assert placed[C].startswith("1号楼-101") or placed[C].startswith("1号楼-102")
    assert len(actions(campus, "bed.allocate")) == 3
    with pytest.raises(Invalid):
        stays.allocate_intake(campus, CENTRE, {})


def workbook(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["学号", "床位或房间", "跨学院原因"])
    for row in rows:
        ws.append(row)
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def test_assignment_import_is_checked_cell_by_cell_and_annotated(campus: Database) -> None:
    data = workbook([[C, "1号楼-102-1", None], [W, "1号楼-102-2", None], ["abc", "1号楼-101-3", None],
                     [MATHS, "1号楼-201-1", None]])
    result = stays.import_assignments(campus, CENTRE, data, apply=True)
    assert result["ok"] is False and result["applied"] == 0
    assert [(e["row"], e["column"]) for e in result["errors"]] == [(3, "B"), (4, "A")]
    assert "男生楼" in result["errors"][0]["message"]
    annotated = load_workbook(BytesIO(result["annotated"]))
    assert "错误说明" in annotated.sheetnames
    assert count(campus, Occupancy) == 2

    good = workbook([[C, "1号楼-102-1", None], [W, "2号楼-101", None], [MATHS, "1号楼-201-1", None]])
    assert stays.import_assignments(campus, CENTRE, good)["applied"] == 0  # a check only
    assert stays.import_assignments(campus, CENTRE, good, apply=True)["applied"] == 3
    assert where(campus)[W] == "2号楼-101-1"


@pytest.mark.parametrize("student_locks", [200, 5], ids=["advisory-locks", "table-lock"])
def test_a_bulk_move_and_leaving_events_at_once_leave_no_leaver_in_a_bed(
        campus: Database, student_locks: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locks, "MAX_STUDENT_LOCKS", student_locks)
    numbers = [f"2023010103{n:02d}" for n in range(1, 21)]
    handlers.create_beds(campus, CENTRE, [
        {"building_code": "B8", "building_name": "8号楼", "gender_policy": "M", "room_no": str(800 + n // 4),
         "capacity": 4, "bed_no": str(n % 4 + 1)} for n in range(40)])
    for number in numbers:
        handlers.on_student_registered(campus, registered(number, gender="1", klass="2023010103"))
    stays.allocate_intake(campus, CENTRE, {"class_codes": ["2023010103"]}, apply=True)
    rows = [{"student_number": n, "target": f"8号楼-{805 + i // 4}-{i % 4 + 1}"} for i, n in enumerate(numbers)]
    pool = eventlet.GreenPool(8)
    events = [pool.spawn(handlers.on_student_status_changed, campus, status_changed(n, 9, "withdrawn"))
              for n in numbers[::3]]
    try:
        moved = stays.move_many(campus, CENTRE, rows)["moved"]
    except Conflict as refused:  # a student had left before the move: nobody moved
        assert "已离校" in str(refused)
        moved = 0
    for green in events:
        green.wait()
    assert moved in (0, len(numbers))
    assert handlers.holders_who_left(campus, CENTRE) == []
    assert count(campus, Bed, Bed.occupant.in_(numbers)) == len(numbers) - len(numbers[::3])


def test_a_bed_allocated_to_a_college_overrides_its_room(campus: Database) -> None:
    estate.allocate_beds(campus, CENTRE, ["1号楼-102-1"], "02")  # room 102 is open to every college
    with pytest.raises(Invalid, match="分配给学院 02"):
        stays.move_bed(campus, CENTRE, C, "1号楼-102-1")
    stays.move_bed(campus, CENTRE, MATHS, "1号楼-102-1")
    estate.allocate_beds(campus, CENTRE, ["1号楼-201-2"], "01")  # a college-01 bed in college 02's room
    stays.move_bed(campus, CENTRE, C, "1号楼-201-2")
    assert where(campus)[C] == "1号楼-201-2"
    assert [json.loads(e.after or "")["college_code"] for e in actions(campus, "bed.allocate_college")] == ["02", "01"]
    preview = stays.allocate_intake(campus, CENTRE, {"entry_year": "2023"})
    assert preview["placed"] == 1  # W only: the others hold beds now
