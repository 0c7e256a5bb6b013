"""The estate (H1) and housing reports against a real, migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry
from services.housing import estate, handlers, reports, stays
from services.housing.tests.factories import caller, registered, room_beds

CENTRE = caller("housing_centre")
MAN, WOMAN = "202301010101", "202301010102"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("housing")


def audited(db: Database, action: str) -> list[str]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry.target).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_campus_building_room_crud_is_audited(db: Database) -> None:
    estate.save_campus(db, CENTRE, "EAST", "东校区")
    building = estate.save_building(db, CENTRE, {"code": "B1", "name": "1号楼", "gender_policy": "M",
                                                 "campus_code": "EAST", "floors": 6})
    assert (building["gender_policy_label"], building["campus_code"]) == ("男生楼", "EAST")
    room = estate.save_room(db, CENTRE, {"building_code": "B1", "room_no": "101", "capacity": 4, "floor": 1,
                                         "room_type": "四人间", "fee": 1200, "college_code": "01", "beds": 4})
    assert (room["label"], room["beds"], room["fee"], room["college_code"]) == ("1号楼-101", 4, 1200, "01")
    with pytest.raises(Conflict, match="容量不能小于床位数"):
        estate.save_room(db, CENTRE, {"building_code": "B1", "room_no": "101", "capacity": 3})
    estate.save_room(db, CENTRE, {"building_code": "B1", "room_no": "101", "capacity": 6, "fee": 900, "beds": 1})
    view = estate.building_rooms(db, caller("student_affairs"), "B1")
    [only] = view["rooms"]
    assert (only["capacity"], only["fee"], only["college_code"], only["beds"]) == (6, 900, None, 5)
    assert [b["label"] for b in only["bed_list"]] == [f"1号楼-101-{n}" for n in range(1, 6)]
    assert estate.list_buildings(db, CENTRE)[0] | {} == building | {"rooms": 1, "beds": 5, "free": 5}
    assert audited(db, "campus.save") == ["EAST"] and audited(db, "building.save") == ["B1"]
    assert audited(db, "room.save") == ["B1-101", "B1-101"]
    with pytest.raises(NotFound, match="校区 WEST 不存在"):
        estate.save_building(db, CENTRE, {"code": "B2", "name": "2号楼", "gender_policy": "F",
                                          "campus_code": "WEST"})
    with pytest.raises(Invalid, match="收费标准"):
        estate.save_room(db, CENTRE, {"building_code": "B1", "room_no": "102", "capacity": 4, "fee": -1})


def test_a_gender_policy_change_must_admit_the_residents(db: Database) -> None:
    handlers.create_beds(db, CENTRE, room_beds("B3", "3号楼", "mixed", "301"))
    handlers.on_student_registered(db, registered(WOMAN, gender="2"))
    handlers.assign_bed(db, CENTRE, WOMAN, "3号楼-301-1")
    with pytest.raises(Conflict, match="不符合新的性别类型"):
        estate.save_building(db, CENTRE, {"code": "B3", "name": "3号楼", "gender_policy": "M"})
    estate.save_building(db, CENTRE, {"code": "B3", "name": "3号楼", "gender_policy": "F"})


def test_beds_with_history_are_never_deleted(db: Database) -> None:
    handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "101", beds=2))
    handlers.on_student_registered(db, registered(MAN, gender="1"))
    handlers.assign_bed(db, CENTRE, MAN, "1号楼-101-1")
    stays.check_out(db, CENTRE, MAN)
    with pytest.raises(Conflict, match="有住宿记录"):
        estate.delete_bed(db, CENTRE, "1号楼-101-1")
    assert estate.delete_bed(db, CENTRE, "1号楼-101-2") == {"deleted": "1号楼-101-2"}
    assert audited(db, "bed.delete") == ["1号楼-101-2"]


def inventory_workbook(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append([c.header for c in estate.INVENTORY_COLUMNS])
    for row in rows:
        ws.append(row)
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def test_inventory_import_checks_every_cell_then_imports(db: Database) -> None:
    bad = inventory_workbook([["B1", "1号楼", "男生楼", 1, "101", "四人间", 4, 1200, "1", "01"],
                              ["B1", "1号楼", "男生宿舍", 1, "101", "四人间", 40, 1200, "2", "01"],
                              ["B 1", "1号楼", "男生楼", "一", "101", "", 4, "", "3", ""]])
    result = estate.import_inventory(db, CENTRE, bad)
    assert result["ok"] is False
    assert [(e["row"], e["column"]) for e in result["errors"]] == [(3, "C"), (3, "G"), (4, "A"), (4, "D")]
    assert load_workbook(BytesIO(result["annotated"]))["错误说明"].max_row == 5
    assert estate.list_buildings(db, CENTRE) == []

    good = inventory_workbook([["B1", "1号楼", "男生楼", 1, "101", "四人间", 4, 1200, str(n), "01"]
                               for n in range(1, 5)] + [["B2", "2号楼", "女生楼", 2, "201", "", 2, "", "1", ""]])
    assert estate.import_inventory(db, CENTRE, good) == {"ok": True, "errors": [], "imported": 5}
    rooms = estate.building_rooms(db, CENTRE, "B1")["rooms"]
    assert (rooms[0]["floor"], rooms[0]["room_type"], rooms[0]["fee"], rooms[0]["college_code"]) == \
        (1, "四人间", 1200, "01")


def test_occupancy_report_by_building_college_and_gender(db: Database) -> None:
    handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "101") + room_beds("B2", "2号楼", "F", "101"))
    estate.allocate_rooms(db, CENTRE, [{"building_code": "B1", "room_no": "101"}], "01")
    handlers.on_student_registered(db, registered(MAN, gender="1"))
    handlers.on_student_registered(db, registered(WOMAN, gender="2"))
    handlers.assign_bed(db, CENTRE, MAN, "1号楼-101-1")
    handlers.assign_bed(db, CENTRE, WOMAN, "2号楼-101-1")
    report = reports.occupancy_report(db, caller("student_affairs"))
    assert report["totals"] == {"beds": 8, "occupied": 2, "free": 6}
    assert [(b["code"], b["occupied"], b["free"]) for b in report["buildings"]] == [("B1", 1, 3), ("B2", 1, 3)]
    assert report["colleges"] == [{"college_code": "01", "residents": 2, "allocated_beds": 4, "allocated_free": 3}]
    estate.allocate_beds(db, CENTRE, ["1号楼-101-4", "2号楼-101-4"], "02")  # a bed's own college counts
    assert [(c["college_code"], c["allocated_beds"]) for c in reports.occupancy_report(db, CENTRE)["colleges"]] == \
        [("01", 3), ("02", 2)]
    assert [(g["label"], g["residents"]) for g in report["genders"]] == [("男生", 1), ("女生", 1)]
    sheet = load_workbook(BytesIO(reports.export_report(db, CENTRE))).active
    assert [c.value for c in sheet[1]][:3] == ["楼栋编号", "楼栋名称", "性别类型"]
    assert sheet.max_row == 3
    with pytest.raises(Forbidden):
        reports.occupancy_report(db, caller("counselor", "classes", "2023010101"))


def test_an_inventory_import_that_contradicts_the_estate_changes_nothing(db: Database) -> None:
    handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "101", capacity=4, beds=2))
    clash = inventory_workbook([["B2", "2号楼", "女生楼", 1, "101", "", 2, "", "1", ""],
                                ["B1", "1号楼", "男生楼", 1, "101", "", 6, "", "3", ""]])
    result = estate.import_inventory(db, CENTRE, clash)
    assert result["ok"] is False and "已登记容量为 4" in result["errors"][0]["message"]
    assert [b["code"] for b in estate.list_buildings(db, CENTRE)] == ["B1"]  # B2 was not created either
