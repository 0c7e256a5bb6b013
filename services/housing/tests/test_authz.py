"""Authorization matrix of housing's use cases (H4, I6), with the shared `Matrix`: every
operation × every role (and the system caller) × a student in / out of the caller's scope.

Writes are the housing centre's; the estate and reports are the housing centre's and
student affairs'; a student's housing is readable by anyone whose scope covers them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.common.authz_matrix import ALLOWED, DENIED, Matrix, rpc_outcome
from services.common.caller import ROLES, SYSTEM, Caller, system_caller
from services.common.db import Database
from services.common.errors import Forbidden
from services.housing import estate, handlers, reports, stays
from services.housing.tests.factories import caller, registered, room_beds

MAN = "202301010101"  # class 2023010101, college 01: the in-scope student
OTHER = "202302010101"  # class 2023020101, college 02: out of every narrow scope
NEW = "202301010103"  # in class 2023010101, no bed yet
ACTORS = (*ROLES, SYSTEM)
SCOPES: dict[str, tuple[str, ...]] = {
    "student": ("self", MAN), "counselor": ("classes", "2023010101"), "deputy_secretary": ("college", "01"),
    "authority": ("area", "340100"),
}
CALLERS: dict[str, Caller] = {
    role: system_caller("tests") if role == SYSTEM else caller(role, *SCOPES.get(role, ("institution",)))
    for role in ACTORS}
WRITERS = {"housing_centre", SYSTEM}
ESTATE_READERS = {"housing_centre", "student_affairs", SYSTEM}
INSTITUTION_WIDE = {"housing_centre", "student_affairs", "academic_affairs", "it_centre", "aid_operator",
                    "aid_auditor", SYSTEM}

Operation = Callable[[Database, Caller], Any]
# Operations that concern no particular student: one target.
ROLE_GATED: list[tuple[str, Operation, set[str]]] = [
    ("create_beds", lambda db, c: handlers.create_beds(db, c, room_beds("B7", "7号楼", "M", "701", beds=1)), WRITERS),
    ("assign_bed", lambda db, c: handlers.assign_bed(db, c, NEW, "1号楼-101-2"), WRITERS),
    ("move_bed", lambda db, c: stays.move_bed(db, c, MAN, "1号楼-101-3"), WRITERS),
    ("move_many", lambda db, c: stays.move_many(db, c, [{"student_number": MAN, "target": "1号楼-101-3"}]), WRITERS),
    ("preview_moves", lambda db, c: stays.preview_moves(db, c, [{"student_number": MAN, "target": "1号楼-101"}]),
     WRITERS),
    ("allocate_intake", lambda db, c: stays.allocate_intake(db, c, {"entry_year": "2023"}), WRITERS),
    ("check_in", lambda db, c: stays.check_in(db, c, MAN), WRITERS),
    ("check_out_many", lambda db, c: stays.check_out_many(db, c, {"student_numbers": [MAN]}), WRITERS),
    ("save_campus", lambda db, c: estate.save_campus(db, c, "EAST", "东校区"), WRITERS),
    ("save_room", lambda db, c: estate.save_room(db, c, {"building_code": "B1", "room_no": "101", "capacity": 4}),
     WRITERS),
    ("allocate_rooms", lambda db, c: estate.allocate_rooms(db, c, [{"building_code": "B1", "room_no": "101"}], "01"),
     WRITERS),
    ("allocate_beds", lambda db, c: estate.allocate_beds(db, c, ["1号楼-101-4"], "01"), WRITERS),
    ("list_buildings", lambda db, c: estate.list_buildings(db, c), ESTATE_READERS),
    ("building_rooms", lambda db, c: estate.building_rooms(db, c, "B1"), ESTATE_READERS),
    ("occupancy_report", lambda db, c: reports.occupancy_report(db, c), ESTATE_READERS),
    ("stays_of_bed", lambda db, c: reports.stays_of_bed(db, c, "1号楼-101-1"), ESTATE_READERS),
    ("holders_who_left", lambda db, c: handlers.holders_who_left(db, c), ESTATE_READERS),
]
# Reads of one student's housing: in and out of the caller's scope.
TARGETS = {"in_scope": MAN, "out_of_scope": OTHER}
SCOPED_ALLOWED = {role: ({"in_scope", "out_of_scope"} if role in INSTITUTION_WIDE else {"in_scope"})
                  for role in ACTORS if role != "authority"}


def listed(db: Database, who: Caller, number: str) -> str:
    """`residents` filters rather than refuses: a student outside the scope is not listed."""
    items = reports.residents(db, who, number)["items"]
    return ALLOWED if [i["student_number"] for i in items] == [number] else DENIED


SCOPED: list[tuple[str, Callable[[Database, Caller, str], str]]] = [
    ("occupancy", lambda db, c, n: rpc_outcome(lambda: handlers.occupancy(db, c, n))),
    ("bed_history", lambda db, c, n: rpc_outcome(lambda: handlers.bed_history(db, c, n))),
    ("checked_out", lambda db, c, n: rpc_outcome(lambda: stays.checked_out(db, c, n))),
    ("residents", lambda db, c, n: listed(db, c, n) if rpc_outcome(lambda: reports.residents(db, c)) == ALLOWED
     else DENIED),
]


@pytest.fixture
def db_backend() -> str:
    """Rules, not SQL: one back end keeps the matrices quick (the SQL runs on both in the
    use cases' own tests)."""
    return "sqlite"


@pytest.fixture
def campus(migrated_db: Callable[[str], Database]) -> Database:
    db = migrated_db("housing")
    centre = system_caller("tests")
    handlers.create_beds(db, centre, room_beds("B1", "1号楼", "M", "101") + room_beds("B2", "2号楼", "M", "201"))
    handlers.on_student_registered(db, registered(MAN, gender="1", klass="2023010101"))
    handlers.on_student_registered(db, registered(NEW, gender="1", klass="2023010101"))
    handlers.on_student_registered(db, registered(OTHER, gender="1", klass="2023020101"))
    handlers.assign_bed(db, centre, MAN, "1号楼-101-1")
    handlers.assign_bed(db, centre, OTHER, "2号楼-201-1")
    return db


@pytest.mark.parametrize(("name", "operation", "allowed"), ROLE_GATED, ids=[row[0] for row in ROLE_GATED])
def test_role_gated_operations(campus: Database, name: str, operation: Operation, allowed: set[str]) -> None:
    matrix = Matrix(actors=ACTORS, targets=("-",), allowed={role: {"-"} for role in allowed})
    matrix.check(lambda actor, _target: rpc_outcome(lambda: operation(campus, CALLERS[actor])), name)


@pytest.mark.parametrize(("name", "attempt"), SCOPED, ids=[row[0] for row in SCOPED])
def test_reads_of_a_students_housing_follow_the_scope(campus: Database, name: str,
                                                      attempt: Callable[[Database, Caller, str], str]) -> None:
    matrix = Matrix(actors=ACTORS, targets=tuple(TARGETS), allowed=SCOPED_ALLOWED)
    matrix.check(lambda actor, target: attempt(campus, CALLERS[actor], TARGETS[target]), name)


def test_a_student_reads_their_own_stays_with_the_reasons_labelled(campus: Database) -> None:
    """The matrix's student row (scope `self`) as the 我的住宿 page uses it: the own bed and every
    stay, each end reason labelled by housing; another student's or an unknown number refused alike."""
    me = CALLERS["student"]
    assert SCOPED_ALLOWED["student"] == {"in_scope"}
    stays.move_bed(campus, CALLERS[SYSTEM], MAN, "1号楼-101-3")
    assert handlers.occupancy(campus, me, MAN)["bed"]["label"] == "1号楼-101-3"
    history = handlers.bed_history(campus, me, MAN)
    assert [(h["bed_label"], h["end_reason"], h["end_reason_label"]) for h in history] == [
        ("1号楼-101-1", "moved", "调整床位"), ("1号楼-101-3", None, "")]
    for number in (OTHER, "202399010101"):
        with pytest.raises(Forbidden):
            handlers.bed_history(campus, me, number)
        with pytest.raises(Forbidden):
            handlers.occupancy(campus, me, number)
