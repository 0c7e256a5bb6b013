"""Home counts (issue 9) and the residents filters behind the occupancy chart, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.common.db import Database
from services.housing import handlers, reports, summaries
from services.housing.tests.factories import caller, registered, room_beds, status_changed

CENTRE = caller("housing_centre")
MAN, OTHER_MAN, FAR, LEFT = "202301010101", "202301020103", "202302010105", "202302010107"
NEW = "202301010109"  # no bed yet


@pytest.fixture
def campus(migrated_db: Callable[[str], Database]) -> Database:
    """Two men's buildings; MAN and OTHER_MAN (college 01) in B1, FAR and LEFT (college 02) in B2, NEW nowhere."""
    db = migrated_db("housing")
    handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "101") + room_beds("B2", "2号楼", "M", "201"))
    for number in (MAN, OTHER_MAN, FAR, LEFT, NEW):
        handlers.on_student_registered(db, registered(number, klass=number[:10]))
    handlers.assign_bed(db, CENTRE, MAN, "1号楼-101-1")
    handlers.assign_bed(db, CENTRE, OTHER_MAN, "1号楼-101-2")
    handlers.assign_bed(db, CENTRE, FAR, "2号楼-201-1")
    handlers.assign_bed(db, CENTRE, LEFT, "2号楼-201-2")
    return db


def test_home_counts_follow_the_lists_they_lead_to(campus: Database) -> None:
    assert summaries.home_counts(campus, CENTRE) == {"holders_who_left": 0, "restore_problems": 0}
    # Roster's copy says LEFT left, while housing still holds the bed (a registration snapshot, H5).
    handlers.on_student_registered(campus, registered(LEFT, klass=LEFT[:10], status="graduated", left=True))
    # MAN withdraws, NEW gets his bed, the withdrawal is revoked: the bed cannot be given back.
    handlers.on_student_status_changed(campus, status_changed(MAN, 7, "withdrawn", left=True))
    handlers.assign_bed(campus, CENTRE, NEW, "1号楼-101-1")
    handlers.on_student_status_changed(campus, status_changed(MAN, 8, "enrolled", left=False, revokes=7))
    counts = summaries.home_counts(campus, CENTRE)
    assert counts == {"holders_who_left": len(handlers.holders_who_left(campus, CENTRE)),
                      "restore_problems": len(handlers.restore_problems(campus, CENTRE))}
    assert counts == {"holders_who_left": 1, "restore_problems": 1}
    assert summaries.home_counts(campus, caller("counselor", "classes", "2023010101")) == {}


def test_residents_filters_match_the_occupancy_report(campus: Database) -> None:
    report = reports.occupancy_report(campus, CENTRE)
    for building in report["buildings"]:
        listed = reports.residents(campus, CENTRE, "", 1, 100, building=building["code"])
        assert listed["total"] == building["occupied"] == 2
        assert all(i["bed_label"].startswith(building["name"]) for i in listed["items"])
    for college in report["colleges"]:
        listed = reports.residents(campus, CENTRE, "", 1, 100, college=college["college_code"], housed=True)
        assert listed["total"] == college["residents"] == 2
    handlers.on_student_status_changed(campus, status_changed(FAR, 9, "withdrawn", left=True))
    assert reports.residents(campus, CENTRE, "", 1, 100, college="02", housed=True)["total"] == 1
    assert reports.residents(campus, CENTRE, "", 1, 100, college="02")["total"] == 2  # the one without a bed too
    # A counselor's filter stays inside the counselor's classes.
    counselor = caller("counselor", "classes", "2023010101")
    assert [i["student_number"] for i in reports.residents(campus, counselor, "", 1, 100, building="B1")["items"]] \
        == [MAN]
