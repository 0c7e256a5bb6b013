"""Housing use cases against a real, migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import eventlet
import pytest
from sqlalchemy import func, select

from services.common.caller import system_caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry, InboxRecord, OutboxMessage
from services.housing import handlers
from services.housing.adapters.orm import Bed, Building, EarlyStatusChange, Occupancy, Room, Student
from services.housing.domain.leaving import release_date
from services.housing.tests.factories import caller, registered, room_beds, status_changed

MAN = "202301010101"  # class 2023010101, college 01
WOMAN = "202301010102"
OTHER_MAN = "202301020103"  # class 2023010201, college 01
CENTRE = caller("housing_centre")
SYSTEM = system_caller("tests")


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("housing")


@pytest.fixture
def campus(db: Database) -> Database:
    """A men's room, a women's room, a mixed room, and three registered students."""
    beds = room_beds("B1", "1号楼", "M", "101") + room_beds("B2", "2号楼", "F", "101") \
        + room_beds("B3", "3号楼", "mixed", "301", capacity=2, beds=2)
    assert handlers.create_beds(db, CENTRE, beds) == {"created": 10}
    handlers.on_student_registered(db, registered(MAN, gender="1", name="张伟", klass="2023010101"))
    handlers.on_student_registered(db, registered(WOMAN, gender="2", name="李娜", klass="2023010101"))
    handlers.on_student_registered(db, registered(OTHER_MAN, gender="1", name="王强", klass="2023010201"))
    return db


def count(db: Database, model: Any, *where: Any) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def audit_entries(db: Database, action: str) -> list[AuditEntry]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def released_events(db: Database) -> list[dict[str, Any]]:
    with db.reading() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "housing.bed_released")
                         .order_by(OutboxMessage.id))
        return [json.loads(row.body) for row in rows]


def student(db: Database, number: str) -> Student:
    with db.reading() as s:
        found = s.get(Student, number)
        assert found is not None
        return found


# --- inventory -------------------------------------------------------------------------
def test_health_counts_beds_occupants_and_students(campus: Database) -> None:
    assert handlers.health(campus) == {"service": "housing", "status": "ok", "db": "ok", "outbox_backlog": 0,
                                       "beds": 10, "occupied": 0, "students_known": 3}
    handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    assert handlers.health(campus)["occupied"] == 1


def test_create_beds_builds_buildings_and_rooms_and_is_idempotent(db: Database) -> None:
    beds = room_beds("B1", "1号楼", "M", "101") + room_beds("B1", "1号楼", "M", "102", capacity=2, beds=2)
    assert handlers.create_beds(db, CENTRE, beds) == {"created": 6}
    assert handlers.create_beds(db, SYSTEM, beds) == {"created": 0}
    assert handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "103", beds=1)
                                + beds[:1]) == {"created": 1}
    with db.reading() as s:
        [building] = s.scalars(select(Building))
        assert (building.code, building.name, building.gender_policy) == ("B1", "1号楼", "M")
        rooms = {r.room_no: r.capacity for r in s.scalars(select(Room))}
        labels = sorted(s.scalars(select(Bed.label)))
    assert rooms == {"101": 4, "102": 2, "103": 4}
    assert labels[:2] == ["1号楼-101-1", "1号楼-101-2"] and len(labels) == 7
    assert len(audit_entries(db, "bed.create")) == 7
    assert [e.target for e in audit_entries(db, "room.create")] == ["B1-101", "B1-102", "B1-103"]
    [made] = audit_entries(db, "building.create")
    assert (made.actor, made.role, made.target) == ("housing_centre01", "housing_centre", "B1")


def test_create_beds_refuses_without_changing_anything(db: Database) -> None:
    handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "101", capacity=4, beds=3))
    with pytest.raises(Invalid, match="容量为 4，床位数不能超过容量"):
        handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "101", capacity=4, beds=5))
    with pytest.raises(Conflict, match="楼栋 B1 已登记为“1号楼”（男生楼）"):
        handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "F", "102"))
    with pytest.raises(Conflict, match="已登记容量为 4"):
        handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "101", capacity=6, beds=6))
    with pytest.raises(Conflict, match="已被其他楼栋的床位使用"):
        handlers.create_beds(db, CENTRE, room_beds("B9", "1号楼", "M", "101", beds=1))
    with pytest.raises(Invalid, match="第 2 条：缺少床位号"):
        handlers.create_beds(db, CENTRE, [room_beds(beds=1)[0], {**room_beds(beds=1)[0], "bed_no": ""}])
    with pytest.raises(Invalid, match="请提供床位列表"):
        handlers.create_beds(db, CENTRE, [])
    assert count(db, Bed) == 3 and count(db, Building) == 1


@pytest.mark.parametrize("role", ["counselor", "student_affairs", "student", "it_centre"])
def test_only_the_housing_centre_creates_beds(db: Database, role: str) -> None:
    with pytest.raises(Forbidden, match="无权执行此操作"):
        handlers.create_beds(db, caller(role), room_beds())
    assert count(db, Bed) == 0


# --- assignment ------------------------------------------------------------------------
def test_assign_bed_records_the_stay_and_audits_it(campus: Database) -> None:
    result = handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-2")
    bed = result["bed"]
    assert result["student_number"] == MAN
    assert {k: v for k, v in bed.items() if k != "since"} == {
        "label": "1号楼-101-2", "building_code": "B1", "building_name": "1号楼", "room_no": "101", "bed_no": "2"}
    assert datetime.fromisoformat(bed["since"]).tzinfo is not None
    assert handlers.occupancy(campus, CENTRE, MAN) == result
    [stay] = handlers.bed_history(campus, CENTRE, MAN)
    assert (stay["bed_label"], stay["ended_at"], stay["end_reason"]) == ("1号楼-101-2", None, None)
    assert stay["started_at"] == bed["since"]
    [entry] = audit_entries(campus, "bed.assign")
    assert (entry.actor, entry.target, json.loads(entry.after or "")["bed"]) == \
        ("housing_centre01", MAN, "1号楼-101-2")
    assert json.loads(entry.before or "") == {"bed": None}


def test_asking_again_for_the_same_bed_changes_nothing(campus: Database) -> None:
    first = handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    assert handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1") == first
    assert count(campus, Occupancy) == 1
    assert len(audit_entries(campus, "bed.assign")) == 1


def test_a_bed_is_not_booked_twice(campus: Database) -> None:
    handlers.assign_bed(campus, CENTRE, MAN, "3号楼-301-1")
    with pytest.raises(Conflict, match="床位 3号楼-301-1 已有人入住"):
        handlers.assign_bed(campus, CENTRE, WOMAN, "3号楼-301-1")
    assert handlers.occupancy(campus, CENTRE, WOMAN)["bed"] is None
    assert count(campus, Occupancy) == 1


def test_a_student_gets_one_bed_only(campus: Database) -> None:
    handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    with pytest.raises(Conflict, match="已有床位 1号楼-101-1，每人只能有一张床位"):
        handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-2")
    assert handlers.occupancy(campus, CENTRE, MAN)["bed"]["label"] == "1号楼-101-1"


def test_the_building_gender_policy_is_enforced(campus: Database) -> None:
    with pytest.raises(Invalid, match="所在楼栋为男生楼，不能安排女生入住"):
        handlers.assign_bed(campus, CENTRE, WOMAN, "1号楼-101-1")
    with pytest.raises(Invalid, match="所在楼栋为女生楼，不能安排男生入住"):
        handlers.assign_bed(campus, CENTRE, MAN, "2号楼-101-1")
    handlers.assign_bed(campus, CENTRE, WOMAN, "2号楼-101-1")
    handlers.assign_bed(campus, CENTRE, MAN, "3号楼-301-1")
    handlers.assign_bed(campus, CENTRE, OTHER_MAN, "3号楼-301-2")
    assert handlers.health(campus)["occupied"] == 3


def test_a_student_who_left_gets_no_bed(campus: Database) -> None:
    handlers.on_student_status_changed(campus, status_changed(MAN, 1, "withdrawn", left=True))
    with pytest.raises(Invalid, match=f"学生 {MAN} 已离校，不能分配床位"):
        handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    assert count(campus, Occupancy) == 0


def test_unknown_student_or_bed_is_not_found(campus: Database) -> None:
    with pytest.raises(NotFound, match="学生不存在"):
        handlers.assign_bed(campus, CENTRE, "202399999999", "1号楼-101-1")
    with pytest.raises(NotFound, match="床位 9号楼-101-1 不存在"):
        handlers.assign_bed(campus, CENTRE, MAN, "9号楼-101-1")
    with pytest.raises(Invalid, match="学号格式不正确"):
        handlers.assign_bed(campus, CENTRE, "12", "1号楼-101-1")


@pytest.mark.parametrize("role", ["counselor", "student_affairs", "student"])
def test_only_the_housing_centre_assigns(campus: Database, role: str) -> None:
    with pytest.raises(Forbidden):
        handlers.assign_bed(campus, caller(role), MAN, "1号楼-101-1")
    assert count(campus, Occupancy) == 0


def test_concurrent_requests_for_one_bed_give_it_to_one_student(campus: Database) -> None:
    numbers = [f"2023010101{n:02d}" for n in range(10, 20)]
    for number in numbers:
        handlers.on_student_registered(campus, registered(number, gender="1"))

    def attempt(number: str) -> str:
        try:
            handlers.assign_bed(campus, CENTRE, number, "3号楼-301-1")
        except Conflict:
            return "refused"
        return "assigned"

    pool = eventlet.GreenPool(10)
    outcomes = list(pool.imap(attempt, numbers))
    assert sorted(outcomes) == ["assigned"] + ["refused"] * 9
    assert count(campus, Occupancy) == 1


def test_concurrent_requests_of_one_student_give_one_bed(campus: Database) -> None:
    def attempt(label: str) -> str:
        try:
            handlers.assign_bed(campus, CENTRE, MAN, label)
        except Conflict:
            return "refused"
        return "assigned"

    pool = eventlet.GreenPool(4)
    outcomes = list(pool.imap(attempt, [f"1号楼-101-{n}" for n in range(1, 5)]))
    assert sorted(outcomes) == ["assigned"] + ["refused"] * 3
    assert count(campus, Bed, Bed.occupant == MAN) == 1


# --- roster events ---------------------------------------------------------------------
def test_registration_feeds_the_read_model_once(db: Database) -> None:
    event = registered(MAN, gender="1", name="张伟")
    handlers.on_student_registered(db, event)
    with db.transaction() as s:  # a later correction the duplicate must not undo
        row = s.get(Student, MAN)
        assert row is not None
        row.name = "张伟伟"
    handlers.on_student_registered(db, event)
    found = student(db, MAN)
    assert (found.name, found.gender, found.college_code, found.class_code, found.status, found.left) == \
        ("张伟伟", "1", "01", "2023010101", "enrolled", False)
    assert count(db, InboxRecord) == 1


def test_leaving_releases_the_bed_and_tells_roster(campus: Database) -> None:
    handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    handlers.on_student_status_changed(campus, status_changed(MAN, 7, "graduated", left=True))

    assert handlers.occupancy(campus, CENTRE, MAN)["bed"] is None
    [stay] = handlers.bed_history(campus, CENTRE, MAN)
    assert (stay["bed_label"], stay["end_reason"]) == ("1号楼-101-1", "graduated")
    assert datetime.fromisoformat(stay["ended_at"]) >= datetime.fromisoformat(stay["started_at"])
    found = student(campus, MAN)
    assert (found.status, found.left, found.last_change_id) == ("graduated", True, 7)

    [event] = released_events(campus)
    assert (event["type"], event["source"], event["correlation_id"]) == \
        ("housing.bed_released", "housing", "corr-7")
    assert event["payload"] == {"student_number": MAN, "bed_label": "1号楼-101-1", "reason": "graduated",
                                "released_on": release_date(datetime.now(UTC)).isoformat()}
    [entry] = audit_entries(campus, "bed.release")
    assert (entry.actor, entry.role, entry.target, entry.correlation_id) == \
        ("system:housing", "system", MAN, "corr-7")
    assert json.loads(entry.before or "")["bed"] == "1号楼-101-1"
    assert handlers.health(campus)["occupied"] == 0
    # the freed bed can be given to someone else
    handlers.assign_bed(campus, CENTRE, OTHER_MAN, "1号楼-101-1")


@pytest.mark.parametrize("status", ["withdrawn", "expelled", "deceased", "transferred_out"])
def test_any_status_that_means_left_releases_the_bed(campus: Database, status: str) -> None:
    handlers.assign_bed(campus, CENTRE, WOMAN, "2号楼-101-3")
    handlers.on_student_status_changed(campus, status_changed(WOMAN, 3, status, left=True))
    assert handlers.occupancy(campus, CENTRE, WOMAN)["bed"] is None
    assert [e["payload"]["reason"] for e in released_events(campus)] == [status]


def test_a_redelivered_leaving_event_releases_once(campus: Database) -> None:
    handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    event = status_changed(MAN, 7, "graduated", left=True)
    handlers.on_student_status_changed(campus, event)
    handlers.on_student_status_changed(campus, event)
    assert count(campus, Occupancy, Occupancy.ended_at.is_not(None)) == 1
    assert len(released_events(campus)) == 1
    # a late third delivery, after the graduation was revoked and the bed given back
    handlers.on_student_status_changed(campus, status_changed(MAN, 8, "enrolled", left=False, revokes=7))
    handlers.on_student_status_changed(campus, event)

    assert count(campus, Occupancy, Occupancy.ended_at.is_not(None)) == 1
    assert len(released_events(campus)) == 1
    assert len(audit_entries(campus, "bed.release")) == 1
    assert handlers.occupancy(campus, CENTRE, MAN)["bed"]["label"] == "1号楼-101-1"
    assert count(campus, InboxRecord, InboxRecord.consumer == "housing.on_student_status_changed") == 2


def test_a_change_that_is_not_leaving_keeps_the_bed(campus: Database) -> None:
    handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    handlers.on_student_status_changed(campus, status_changed(MAN, 4, "suspended", left=False))
    assert handlers.occupancy(campus, CENTRE, MAN)["bed"]["label"] == "1号楼-101-1"
    assert student(campus, MAN).status == "suspended"
    assert released_events(campus) == []
    assert count(campus, Occupancy, Occupancy.ended_at.is_not(None)) == 0


def test_an_older_change_arriving_late_does_not_release(campus: Database) -> None:
    handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    handlers.on_student_status_changed(campus, status_changed(MAN, 9, "enrolled", left=False, revokes=8))
    handlers.on_student_status_changed(campus, status_changed(MAN, 8, "graduated", left=True))
    assert handlers.occupancy(campus, CENTRE, MAN)["bed"] is not None
    found = student(campus, MAN)
    assert (found.status, found.left, found.last_change_id) == ("enrolled", False, 9)
    assert released_events(campus) == []


def test_a_change_for_an_unknown_student_waits_for_the_registration(db: Database) -> None:
    handlers.on_student_status_changed(db, status_changed(MAN, 5, "graduated", left=True))
    assert count(db, Student) == 0
    assert count(db, InboxRecord) == 1
    assert released_events(db) == []
    # the registration (sent first, delivered later) carries the older snapshot
    handlers.on_student_registered(db, registered(MAN, status="enrolled", left=False))
    found = student(db, MAN)
    assert (found.name, found.status, found.left, found.last_change_id) == ("张伟", "graduated", True, 5)
    assert count(db, EarlyStatusChange) == 0


def test_only_the_newest_early_change_is_kept(db: Database) -> None:
    handlers.on_student_status_changed(db, status_changed(MAN, 6, "enrolled", left=False, revokes=5))
    handlers.on_student_status_changed(db, status_changed(MAN, 5, "graduated", left=True))
    handlers.on_student_registered(db, registered(MAN))
    found = student(db, MAN)
    assert (found.status, found.left, found.last_change_id) == ("enrolled", False, 6)


def test_a_later_registration_snapshot_does_not_undo_a_status_change(campus: Database) -> None:
    handlers.on_student_status_changed(campus, status_changed(MAN, 2, "suspended", left=False))
    handlers.on_student_registered(campus, registered(MAN, name="张伟", klass="2023010102"))
    found = student(campus, MAN)
    assert (found.status, found.class_code) == ("suspended", "2023010102")


# --- reading: scope (H4, I6) -------------------------------------------------------------
@pytest.mark.parametrize(("who", "allowed"), [
    (caller("housing_centre"), True),
    (caller("student_affairs"), True),
    (caller("housing_centre", "none"), True),
    (caller("counselor", "classes", "2023010101"), True),
    (caller("counselor", "classes", "2023010201", "2023010202"), False),
    (caller("deputy_secretary", "college", "01"), True),
    (caller("deputy_secretary", "college", "02"), False),
    (caller("student", "self", MAN), True),
    (caller("student", "self", WOMAN), False),
    (caller("aid_operator", "none"), False),
])
def test_occupancy_and_history_follow_the_callers_scope(campus: Database, who: Any, allowed: bool) -> None:
    handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    if allowed:
        assert handlers.occupancy(campus, who, MAN)["bed"]["label"] == "1号楼-101-1"
        assert len(handlers.bed_history(campus, who, MAN)) == 1
    else:
        with pytest.raises(Forbidden, match=f"学生 {MAN} 不在您的数据权限范围内"):
            handlers.occupancy(campus, who, MAN)
        with pytest.raises(Forbidden):
            handlers.bed_history(campus, who, MAN)


def test_a_student_without_a_bed_has_none(campus: Database) -> None:
    assert handlers.occupancy(campus, caller("student", "self", WOMAN), WOMAN) == \
        {"student_number": WOMAN, "bed": None}
    assert handlers.bed_history(campus, CENTRE, WOMAN) == []


def test_unknown_student_is_not_found_only_for_those_who_could_see_it(campus: Database) -> None:
    ghost = "202301019901"
    for who in (CENTRE, SYSTEM, caller("student", "self", ghost), caller("academic_affairs")):
        with pytest.raises(NotFound, match="学生不存在"):
            handlers.occupancy(campus, who, ghost)
    with pytest.raises(Forbidden):
        handlers.occupancy(campus, caller("counselor", "classes", "2023010199"), ghost)
    with pytest.raises(Invalid, match="学号格式不正确"):
        handlers.occupancy(campus, CENTRE, "not a number")


# --- H5 report ---------------------------------------------------------------------------
def test_holders_who_left_lists_students_gone_but_still_in_a_bed(campus: Database) -> None:
    handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-1")
    handlers.assign_bed(campus, CENTRE, WOMAN, "2号楼-101-1")
    assert handlers.holders_who_left(campus, CENTRE) == []
    # roster re-sends the man's registration already marked as left: no release happens
    handlers.on_student_registered(campus, registered(MAN, status="withdrawn", left=True))
    [holder] = handlers.holders_who_left(campus, caller("student_affairs"))
    assert (holder["student_number"], holder["name"], holder["status"], holder["bed"]["label"]) == \
        (MAN, "张伟", "withdrawn", "1号楼-101-1")
    # a status change saying so releases it, and the report is empty again
    handlers.on_student_status_changed(campus, status_changed(MAN, 3, "withdrawn", left=True))
    assert handlers.holders_who_left(campus, CENTRE) == []


@pytest.mark.parametrize("role", ["counselor", "student", "aid_operator"])
def test_holders_who_left_is_for_housing_and_student_affairs(campus: Database, role: str) -> None:
    with pytest.raises(Forbidden):
        handlers.holders_who_left(campus, caller(role))
