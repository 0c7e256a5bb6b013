"""Revocation gives the bed back, suspension's configurable effect, and `beds_held` (issue 5),
against a real, migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.caller import system_caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.common.models import AuditEntry, InboxRecord, OutboxMessage
from services.housing import handlers, stays
from services.housing.adapters.orm import Bed, Occupancy, Student
from services.housing.tests.factories import caller, registered, room_beds, status_changed

MAN = "202301010101"  # class 2023010101, college 01
OTHER_MAN = "202301020103"  # class 2023010201, college 01
FAR = "202302010105"  # class 2023020101, college 02
CENTRE = caller("housing_centre")
SETTING = "HOUSING_SUSPENSION_RELEASES_BED"


@pytest.fixture
def campus(migrated_db: Callable[[str], Database], monkeypatch: pytest.MonkeyPatch) -> Database:
    """One men's room of four beds; three men (two colleges), MAN checked in to bed 1."""
    monkeypatch.delenv(SETTING, raising=False)
    db = migrated_db("housing")
    handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "101"))
    for number, klass in ((MAN, "2023010101"), (OTHER_MAN, "2023010201"), (FAR, "2023020101")):
        handlers.on_student_registered(db, registered(number, klass=klass))
    handlers.assign_bed(db, CENTRE, MAN, "1号楼-101-1")
    stays.check_in(db, CENTRE, MAN)
    return db


def count(db: Database, what: Any, *where: Any) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(what).where(*where)) or 0


def audits(db: Database, action: str) -> list[AuditEntry]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def bed_of(db: Database, number: str) -> str | None:
    bed = handlers.occupancy(db, CENTRE, number)["bed"]
    return bed["label"] if bed else None


def released(db: Database) -> int:
    return count(db, OutboxMessage, OutboxMessage.event_type == "housing.bed_released")


def stays_of(db: Database, number: str) -> list[Occupancy]:
    with db.reading() as s:
        return list(s.scalars(select(Occupancy).where(Occupancy.student_number == number).order_by(Occupancy.id)))


# --- revocation ------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["withdrawn", "graduated", "expelled", "transferred_out"])
def test_revoking_the_change_that_released_the_bed_gives_the_same_bed_back(campus: Database, status: str) -> None:
    handlers.on_student_status_changed(campus, status_changed(MAN, 7, status, left=True))
    assert bed_of(campus, MAN) is None
    handlers.on_student_status_changed(campus, status_changed(MAN, 8, "enrolled", old_status=status, left=False,
                                                              revokes=7))

    assert bed_of(campus, MAN) == "1号楼-101-1"
    first, second = stays_of(campus, MAN)
    assert (first.end_reason, first.released_by_change_id, first.ended_at is not None) == (status, 7, True)
    assert (second.bed_id, second.ended_at, second.released_by_change_id) == (first.bed_id, None, None)
    assert second.checked_in_at is not None and second.checked_in_at == first.checked_in_at  # still checked in
    with campus.reading() as s:
        student = s.get(Student, MAN)
        assert student is not None and (student.status, student.left, student.last_change_id) == \
            ("enrolled", False, 8)
    assert released(campus) == 1  # the release only; a restore tells nobody it released anything
    [entry] = audits(campus, "bed.restore")
    assert (entry.actor, entry.target, entry.correlation_id) == ("system:housing", MAN, "corr-8")
    assert json.loads(entry.after or "")["bed"] == "1号楼-101-1"
    assert json.loads(entry.after or "")["revokes_change_id"] == 7
    assert handlers.health(campus)["occupied"] == 1
    assert handlers.restore_problems(campus, CENTRE) == []


def test_a_bed_given_to_someone_else_meanwhile_stays_theirs(campus: Database) -> None:
    handlers.on_student_status_changed(campus, status_changed(MAN, 7, "withdrawn", left=True))
    handlers.assign_bed(campus, CENTRE, OTHER_MAN, "1号楼-101-1")
    handlers.on_student_status_changed(campus, status_changed(MAN, 8, "enrolled", left=False, revokes=7))

    assert bed_of(campus, MAN) is None
    assert bed_of(campus, OTHER_MAN) == "1号楼-101-1"
    assert audits(campus, "bed.restore") == []
    [entry] = audits(campus, "bed.restore_failed")
    assert (entry.target, json.loads(entry.after or "")["held_by"]) == (MAN, OTHER_MAN)
    [problem] = handlers.restore_problems(campus, CENTRE)
    assert {k: problem[k] for k in ("student_number", "status", "wanted_bed", "held_by", "revokes_change_id")} == \
        {"student_number": MAN, "status": "enrolled", "wanted_bed": "1号楼-101-1", "held_by": OTHER_MAN,
         "revokes_change_id": 7}
    assert handlers.restore_problems(campus, caller("student_affairs"))[0]["student_number"] == MAN
    with pytest.raises(Forbidden):
        handlers.restore_problems(campus, caller("counselor", "classes", "2023010101"))
    # once the housing centre places the student, the problem is gone
    handlers.assign_bed(campus, CENTRE, MAN, "1号楼-101-2")
    assert handlers.restore_problems(campus, CENTRE) == []


def test_a_redelivered_revocation_restores_once(campus: Database) -> None:
    handlers.on_student_status_changed(campus, status_changed(MAN, 7, "graduated", left=True))
    revoke = status_changed(MAN, 8, "enrolled", left=False, revokes=7)
    handlers.on_student_status_changed(campus, revoke)
    handlers.on_student_status_changed(campus, revoke, revoke)
    # the revoked change, delivered late again, is older than the revocation: ignored
    handlers.on_student_status_changed(campus, status_changed(MAN, 7, "graduated", left=True))

    assert bed_of(campus, MAN) == "1号楼-101-1"
    assert len(stays_of(campus, MAN)) == 2
    assert len(audits(campus, "bed.restore")) == 1
    assert released(campus) == 1
    assert count(campus, InboxRecord, InboxRecord.consumer == "housing.on_student_status_changed") == 3


def test_a_release_and_its_revocation_in_one_batch(campus: Database) -> None:
    handlers.on_student_status_changed(
        campus,
        status_changed(MAN, 7, "withdrawn", left=True),
        status_changed(MAN, 8, "enrolled", old_status="withdrawn", left=False, revokes=7),
        status_changed(OTHER_MAN, 9, "suspended", left=False),
    )
    assert bed_of(campus, MAN) == "1号楼-101-1"
    assert [s.ended_at is None for s in stays_of(campus, MAN)] == [False, True]
    assert released(campus) == 1 and len(audits(campus, "bed.restore")) == 1


def test_revoking_a_change_that_released_nothing_gives_nothing(campus: Database) -> None:
    # OTHER_MAN had no bed when he left; the revocation must not invent one
    handlers.on_student_status_changed(campus, status_changed(OTHER_MAN, 3, "withdrawn", left=True))
    handlers.on_student_status_changed(campus, status_changed(OTHER_MAN, 4, "enrolled", left=False, revokes=3))
    assert bed_of(campus, OTHER_MAN) is None
    # a revocation of a change housing never saw release MAN's bed changes nothing either
    handlers.on_student_status_changed(campus, status_changed(MAN, 6, "enrolled", left=False, revokes=5))
    assert bed_of(campus, MAN) == "1号楼-101-1"
    assert audits(campus, "bed.restore") == audits(campus, "bed.restore_failed") == []
    assert handlers.restore_problems(campus, CENTRE) == []


def test_only_the_revoked_change_s_release_comes_back(campus: Database) -> None:
    """Released by 7, revoked by 8 (restored), released again by 9: revoking 9 restores once more,
    and a stray revocation of 7 (already undone) changes nothing."""
    handlers.on_student_status_changed(campus, status_changed(MAN, 7, "withdrawn", left=True))
    handlers.on_student_status_changed(campus, status_changed(MAN, 8, "enrolled", left=False, revokes=7))
    handlers.on_student_status_changed(campus, status_changed(MAN, 9, "expelled", left=True))
    assert bed_of(campus, MAN) is None
    handlers.on_student_status_changed(campus, status_changed(MAN, 10, "enrolled", left=False, revokes=9))
    assert bed_of(campus, MAN) == "1号楼-101-1"
    handlers.on_student_status_changed(campus, status_changed(MAN, 11, "enrolled", left=False, revokes=7))
    assert [s.released_by_change_id for s in stays_of(campus, MAN)] == [7, 9, None]
    assert len(audits(campus, "bed.restore")) == 2 and audits(campus, "bed.restore_failed") == []


# --- suspension ------------------------------------------------------------------------------
@pytest.mark.parametrize("setting", [None, "false"])
def test_suspension_keeps_the_bed_by_default(campus: Database, monkeypatch: pytest.MonkeyPatch,
                                             setting: str | None) -> None:
    if setting is not None:
        monkeypatch.setenv(SETTING, setting)
    handlers.on_student_status_changed(campus, status_changed(MAN, 4, "suspended", left=False))
    assert bed_of(campus, MAN) == "1号楼-101-1"
    assert released(campus) == 0
    handlers.on_student_status_changed(campus, status_changed(MAN, 5, "enrolled", old_status="suspended",
                                                              left=False, revokes=4))
    assert bed_of(campus, MAN) == "1号楼-101-1" and len(stays_of(campus, MAN)) == 1


def test_suspension_releases_the_bed_where_configured_and_its_revocation_restores_it(
        campus: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTING, "true")
    handlers.on_student_status_changed(campus, status_changed(MAN, 4, "suspended", left=False))
    assert bed_of(campus, MAN) is None
    with campus.reading() as s:
        [body] = [json.loads(m.body) for m in s.scalars(select(OutboxMessage))]
    assert (body["payload"]["reason"], body["payload"]["bed_label"]) == ("suspended", "1号楼-101-1")
    assert [s.end_reason for s in stays_of(campus, MAN)] == ["suspended"]

    handlers.on_student_status_changed(campus, status_changed(MAN, 5, "enrolled", old_status="suspended",
                                                              left=False, revokes=4))
    assert bed_of(campus, MAN) == "1号楼-101-1"
    assert released(campus) == 1


def test_resuming_is_not_a_revocation(campus: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """复学 after a suspension that released the bed: the housing centre assigns a bed anew."""
    monkeypatch.setenv(SETTING, "true")
    handlers.on_student_status_changed(campus, status_changed(MAN, 4, "suspended", left=False))
    handlers.on_student_status_changed(campus, status_changed(MAN, 5, "enrolled", old_status="suspended",
                                                              left=False))
    assert bed_of(campus, MAN) is None
    assert handlers.restore_problems(campus, CENTRE) == []


def test_a_suspension_kept_under_the_old_setting_is_not_released_by_its_revocation(
        campus: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    handlers.on_student_status_changed(campus, status_changed(MAN, 4, "suspended", left=False))
    monkeypatch.setenv(SETTING, "true")
    handlers.on_student_status_changed(campus, status_changed(MAN, 5, "enrolled", left=False, revokes=4))
    assert bed_of(campus, MAN) == "1号楼-101-1" and released(campus) == 0


# --- beds_held -------------------------------------------------------------------------------
@pytest.fixture
def housed(campus: Database) -> Database:
    handlers.assign_bed(campus, CENTRE, FAR, "1号楼-101-3")  # MAN holds 101-1, OTHER_MAN no bed
    return campus


EVERYONE = [MAN, OTHER_MAN, FAR, "202301010199"]  # the last one unknown to housing


@pytest.mark.parametrize(("who", "expected"), [
    (caller("student_affairs"), {MAN, FAR}),
    (caller("academic_affairs"), {MAN, FAR}),
    (caller("housing_centre"), {MAN, FAR}),
    (system_caller("tests"), {MAN, FAR}),
    (caller("counselor", "classes", "2023010101"), {MAN}),
    (caller("counselor", "classes", "2023010201"), set()),
    (caller("deputy_secretary", "college", "02"), {FAR}),
    (caller("deputy_secretary", "college", "01"), {MAN}),
    (caller("counselor", "none"), set()),
])
def test_beds_held_lists_the_callers_students_who_hold_a_bed(housed: Database, who: Any,
                                                             expected: set[str]) -> None:
    held = handlers.beds_held(housed, who, EVERYONE)
    assert set(held) == expected
    if MAN in held:
        assert held[MAN] == {"bed_label": "1号楼-101-1", "building": "1号楼", "room": "101"}


@pytest.mark.parametrize("role", ["student", "it_centre", "aid_operator", "aid_auditor", "authority"])
def test_beds_held_is_not_for_other_roles(housed: Database, role: str) -> None:
    with pytest.raises(Forbidden):
        handlers.beds_held(housed, caller(role), [MAN])


def test_beds_held_checks_its_input(housed: Database) -> None:
    assert handlers.beds_held(housed, CENTRE, []) == {}
    with pytest.raises(Invalid, match="学号格式不正确"):
        handlers.beds_held(housed, CENTRE, [MAN, "x'; --"])
    with pytest.raises(Invalid, match="请提供学号列表"):
        handlers.beds_held(housed, CENTRE, MAN)
    with pytest.raises(Invalid, match="每次最多"):
        handlers.beds_held(housed, CENTRE, [MAN] * (handlers.MAX_BEDS_HELD + 1))


def test_beds_held_follows_releases_and_restores(housed: Database) -> None:
    handlers.on_student_status_changed(housed, status_changed(MAN, 7, "graduated", left=True))
    assert set(handlers.beds_held(housed, CENTRE, EVERYONE)) == {FAR}
    handlers.on_student_status_changed(housed, status_changed(MAN, 8, "enrolled", left=False, revokes=7))
    assert set(handlers.beds_held(housed, CENTRE, EVERYONE)) == {MAN, FAR}
    with housed.reading() as s:
        assert s.scalar(select(Bed.occupant).where(Bed.label == "1号楼-101-1")) == MAN
