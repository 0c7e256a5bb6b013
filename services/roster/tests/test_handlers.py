"""Roster use cases against a real database (SQLite and PostgreSQL), migrated by alembic."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from services.common.audit import verify_chain
from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.models import AuditEntry, OutboxMessage
from services.roster import clearance, handlers, importing, problems
from services.roster.adapters.orm import ClearanceEvent, Student
from services.roster.tests.factories import clearance_completed, clearance_revoked, national_id, student

SYSTEM = system_caller("test")
REGISTRAR = Caller("1000001", "1000001", "student_affairs", Scope("institution"))
COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("roster")
    handlers.upsert_org_units(database, SYSTEM, [
        {"code": "01", "name": "计算机学院", "kind": "college"},
        {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
        {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
        {"code": "2023010102", "name": "计科2302", "kind": "class", "parent_code": "0101"},
    ])
    importing.register_students(database, SYSTEM, [student(i) for i in range(1, 6)] + [
        student(1, klass="2023010102", gender="2")])
    return database


def events(db: Database, event_type: str) -> list[dict[str, Any]]:
    with db.reading() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.event_type == event_type)
                         .order_by(OutboxMessage.id)).all()
        return [json.loads(r.body) for r in rows]


def status_of(db: Database, number: str) -> str:
    with db.reading() as s:
        row = s.get(Student, number)
        assert row is not None
        return row.status


def problem_states(db: Database) -> dict[str | None, str]:
    with db.reading() as s:
        return {r.event_id: r.state for r in s.scalars(select(ClearanceEvent))}


def test_registration_publishes_one_event_per_new_student(db: Database) -> None:
    registered = events(db, "student.registered")
    assert len(registered) == 6
    assert registered[0]["payload"]["student_number"] == "202301010101"
    assert registered[0]["payload"]["left"] is False
    again = importing.register_students(db, SYSTEM, [student(1)])
    assert (again["registered"], again["existing"]) == (0, 1)
    assert len(events(db, "student.registered")) == 6


def test_registration_stores_the_full_record_and_audits_it_in_the_chain(db: Database) -> None:
    row = {**student(7), "political_status": "中国共产主义青年团团员", "native_place": "110101",
           "phone": "138 0013 8000", "level": "本科"}
    assert importing.register_students(db, SYSTEM, [row])["registered"] == 1
    with db.reading() as s:
        stored = s.get(Student, "202301010107")
        assert stored is not None
        assert (stored.ethnicity, stored.id_type, stored.political_status, stored.level, stored.phone,
                stored.entry_month, stored.major_code) == ("01", "1", "03", "3", "13800138000", "2023-09", "0101")
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "student.register",
                                                   AuditEntry.target == "202301010107")).one()
        assert json.loads(entry.after or "{}")["political_status"] == "03"
        assert verify_chain(s).ok


def test_registration_is_all_or_nothing(db: Database) -> None:
    bad = {**student(9), "national_id": "110101200503140031"}
    with pytest.raises(Invalid, match="第2行 身份证件号：") as err:
        importing.register_students(db, SYSTEM, [student(8), bad])
    assert err.value.field == "national_id"
    with pytest.raises(NotFound):
        handlers.get_student(db, SYSTEM, "202301010108")


def test_registration_checks_every_row_like_the_import(db: Database) -> None:
    """The record's rules (required fields, code tables, R6, org tree, repeats) on every row at once."""
    rows = [
        {**student(8), "ethnicity": ""},  # required
        {**student(9), "ethnicity": "火星族"},  # code table
        {**student(10), "student_number": "202301020110"},  # R6: not of the class
        student(1, klass="2023010199"),  # no such class
        student(11), {**student(12), "national_id": student(11)["national_id"]},  # the same ID twice
    ]
    with pytest.raises(Invalid) as err:
        importing.register_students(db, SYSTEM, rows)
    message = str(err.value.args[0])
    for expected in ("第1行 民族：民族不能为空", "第2行 民族：民族“火星族”不在代码表中", "第3行 学号：",
                     "第4行 班号：班级 2023010199 不存在", "第5行 身份证件号：", "第6行 身份证件号："):
        assert expected in message
    with db.reading() as s:
        assert s.get(Student, "202301010111") is None
    with pytest.raises(Invalid, match="对象列表"):
        importing.register_students(db, SYSTEM, ["202301010111"])  # type: ignore[list-item]


def test_registration_refuses_a_registered_number_with_other_data_and_a_taken_id(db: Database) -> None:
    with pytest.raises(Invalid, match="第1行 学号：学号已存在且信息不同"):
        importing.register_students(db, SYSTEM, [{**student(1), "ethnicity": "03"}])
    taken = {**student(8), "national_id": student(2)["national_id"]}
    with pytest.raises(Invalid, match="202301010102"):
        importing.register_students(db, SYSTEM, [taken])
    assert len(events(db, "student.registered")) == 6


def test_registration_records_a_suspected_duplicate_without_an_id_number(db: Database) -> None:
    """R14 on this entry path too: no ID number, and the name, gender and birth date of someone registered."""
    result = importing.register_students(db, SYSTEM, [{**student(8, with_id=False), "name": student(1)["name"]}])
    assert result["registered"] == 1
    found = problems.list_problems(db, REGISTRAR)
    assert [[x["student_number"] for x in p["students"]] for p in found] == [["202301010101", "202301010108"]]


def test_an_unknown_birthplace_is_a_warning_and_the_student_is_registered(db: Database) -> None:
    born = date(2005, 3, 14)
    row = {**student(8), "national_id": national_id(born, "1", area="330383")}  # 龙港市 (2019), newer than 2005
    result = importing.register_students(db, SYSTEM, [row])
    assert result["registered"] == 1
    assert [(w["row"], w["field"]) for w in result["warnings"]] == [(1, "national_id")]
    assert "出生地" in result["warnings"][0]["message"]


def test_only_registrars_register(db: Database) -> None:
    with pytest.raises(Forbidden):
        importing.register_students(db, COUNSELOR, [student(8)])


def test_search_is_limited_to_the_callers_scope(db: Database) -> None:
    assert handlers.search_students(db, REGISTRAR, "", 1, 20)["total"] == 6
    mine = handlers.search_students(db, COUNSELOR, "", 1, 20)
    assert mine["total"] == 5
    assert {i["class_code"] for i in mine["items"]} == {"2023010101"}
    page = handlers.search_students(db, REGISTRAR, "2023010101", 2, 2)
    assert [i["student_number"] for i in page["items"]] == ["202301010103", "202301010104"]
    assert handlers.search_students(db, REGISTRAR, "学生零五", 1, 20)["total"] == 1
    with pytest.raises(Invalid):
        handlers.search_students(db, REGISTRAR, "", 0, 20)


def test_search_pages_each_kind_of_query_as_one_ordered_list(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page comes from each branch's first rows (number prefix, name part, ID number): it must be
    the same list, in number order, as one filter over everything would give."""
    def numbers(q: str, page: int = 1, per_page: int = 20, caller: Caller = REGISTRAR) -> list[str]:
        return [i["student_number"] for i in handlers.search_students(db, caller, q, page, per_page)["items"]]

    everyone = ["202301010101", "202301010102", "202301010103", "202301010104", "202301010105", "202301010201"]
    assert numbers("学生零", 1, 4) + numbers("学生零", 2, 4) == everyone
    assert numbers("学生零", 3, 2) == everyone[4:] and numbers("学生零", 4, 2) == []
    assert numbers("学生零一") == ["202301010101", "202301010201"]
    assert numbers("学生_一") == ["202301010101", "202301010201"]  # LIKE wildcards keep their meaning
    assert numbers("2023010") == everyone and numbers("2023010102") == ["202301010201"]
    assert numbers("20230101019") == [] and numbers("9") == [] and numbers("202301010105") == ["202301010105"]
    with db.reading() as s:
        national_id = s.get(Student, "202301010103").national_id  # type: ignore[union-attr]
    assert numbers(national_id) == ["202301010103"]
    assert numbers("学生零", 1, 20, COUNSELOR) == everyone[:5]
    # a huge result is counted up to the cap and says so; its pages are still all there
    monkeypatch.setattr(handlers, "SEARCH_COUNT_CAP", 3)
    capped = handlers.search_students(db, REGISTRAR, "学生", 1, 4)
    assert (capped["total"], capped["total_capped"], len(capped["items"])) == (3, True, 4)
    assert numbers("学生", 2, 4) == everyone[4:]
    exact = handlers.search_students(db, REGISTRAR, "学生零五", 1, 4)
    assert (exact["total"], exact["total_capped"]) == (1, False)


def test_scope_and_id_masking_on_a_single_record(db: Database) -> None:
    full = handlers.get_student(db, REGISTRAR, "202301010101")
    masked = handlers.get_student(db, COUNSELOR, "202301010101")
    assert "*" not in full["national_id"] and "*" in masked["national_id"]
    assert masked["class_name"] == "计科2301" and masked["status_label"] == "在读"
    with pytest.raises(Forbidden):
        handlers.get_student(db, COUNSELOR, "202301010201")
    me = Caller("202301010102", "202301010102", "student", Scope("self", ("202301010102",)))
    assert "*" not in handlers.get_student(db, me, "202301010102")["national_id"]
    with pytest.raises(Forbidden):
        handlers.get_student(db, me, "202301010101")


def test_clearance_completed_graduates_once(db: Database) -> None:
    eid = str(uuid.uuid4())
    body = clearance_completed("202301010101", eid)
    assert clearance.receive(db, "clearance.completed", body) == "applied"
    assert clearance.receive(db, "clearance.completed", body) == "duplicate"
    assert status_of(db, "202301010101") == "graduated"
    changed = events(db, "student.status_changed")
    assert len(changed) == 1
    payload = changed[0]["payload"]
    assert (payload["old_status"], payload["new_status"], payload["left"]) == ("enrolled", "graduated", True)
    assert changed[0]["actor"] == {"kind": "external", "id": "clearance", "name": "离校系统"}
    history = handlers.status_history(db, REGISTRAR, "202301010101")
    assert history[0]["evidence"] == f"clearance_event:{eid}"


@pytest.mark.parametrize("outcome,status", [("completed", "completed"), ("attendance", "attendance")])
def test_clearance_outcomes(db: Database, outcome: str, status: str) -> None:
    clearance.receive(db, "clearance.completed",
                      clearance_completed("202301010102", str(uuid.uuid4()), outcome=outcome))
    assert status_of(db, "202301010102") == status


def test_unknown_student_is_listed_and_reprocessable(db: Database) -> None:
    eid = str(uuid.uuid4())
    assert clearance.receive(db, "clearance.completed", clearance_completed("202301010109", eid)) == "unmatched"
    other = clearance.receive(db, "clearance.completed", clearance_completed("202301010103", str(uuid.uuid4())))
    assert other == "applied"  # one unmatched event blocks nothing
    problems = clearance.list_problems(db, REGISTRAR)
    assert [p["event_id"] for p in problems] == [eid]
    assert "不存在" in problems[0]["problem"]
    still = clearance.reprocess(db, REGISTRAR, problems[0]["id"])
    assert still["state"] == "unmatched" and still["attempts"] == 2
    importing.register_students(db, SYSTEM, [student(9)])
    done = clearance.reprocess(db, REGISTRAR, problems[0]["id"])
    assert done["state"] == "applied"
    assert status_of(db, "202301010109") == "graduated"
    assert clearance.list_problems(db, REGISTRAR) == []
    with pytest.raises(Invalid):
        clearance.reprocess(db, REGISTRAR, problems[0]["id"])
    with pytest.raises(Forbidden):
        clearance.list_problems(db, COUNSELOR)
    with db.reading() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "clearance.reprocess")) is not None


def test_invalid_body_is_listed_not_dropped(db: Database) -> None:
    body = clearance_completed("202301010101", str(uuid.uuid4()))
    body["outcome"] = "expelled"
    assert clearance.receive(db, "clearance.completed", body) == "invalid"
    assert clearance.receive(db, "clearance.completed", {"garbage": True}) == "invalid"
    assert status_of(db, "202301010101") == "enrolled"
    assert len(clearance.list_problems(db, REGISTRAR)) == 2
    problem = clearance.list_problems(db, REGISTRAR)[0]
    closed = clearance.dismiss(db, REGISTRAR, problem["id"], "离校系统已重发正确事件")
    assert closed["state"] == "resolved"


def test_mismatched_id_number_is_a_conflict(db: Database) -> None:
    body = clearance_completed("202301010101", str(uuid.uuid4()), national_id_number="110101200501010019")
    assert clearance.receive(db, "clearance.completed", body) == "conflict"
    assert status_of(db, "202301010101") == "enrolled"


def test_revocation_restores_the_previous_status(db: Database) -> None:
    done, undo = str(uuid.uuid4()), str(uuid.uuid4())
    clearance.receive(db, "clearance.completed", clearance_completed("202301010101", done))
    assert clearance.receive(db, "clearance.revoked", clearance_revoked("202301010101", undo, done)) == "applied"
    assert status_of(db, "202301010101") == "enrolled"
    changed = events(db, "student.status_changed")
    assert len(changed) == 2
    assert changed[1]["payload"]["left"] is False
    assert changed[1]["payload"]["revokes_change_id"] == changed[0]["payload"]["change_id"]
    assert problem_states(db)[done] == "revoked"
    # the revocation itself is idempotent
    assert clearance.receive(db, "clearance.revoked", clearance_revoked("202301010101", undo, done)) == "duplicate"


def test_revocation_after_another_change_needs_a_person(db: Database) -> None:
    first, second, undo = (str(uuid.uuid4()) for _ in range(3))
    clearance.receive(db, "clearance.completed", clearance_completed("202301010101", first))
    # a later, different clearance changes nothing (already graduated) ...
    assert clearance.receive(db, "clearance.completed", clearance_completed("202301010101", second)) == "no_change"
    # ... but a revocation is refused when the student's status moved on since
    with db.transaction() as s:
        row = s.get(Student, "202301010101")
        assert row is not None
        handlers.change_status(s, row, "withdrawn", reason="test", effective_at=row.updated_at,
                               actor=handlers.actor_of(SYSTEM), evidence=None, correlation_id=None)
    assert clearance.receive(db, "clearance.revoked", clearance_revoked("202301010101", undo, first)) == "conflict"
    assert status_of(db, "202301010101") == "withdrawn"


def test_revocation_of_an_event_never_applied_is_listed_and_blocks_late_arrival(db: Database) -> None:
    late, undo = str(uuid.uuid4()), str(uuid.uuid4())
    assert clearance.receive(db, "clearance.revoked", clearance_revoked("202301010104", undo, late)) == "unmatched"
    assert [p["event_id"] for p in clearance.list_problems(db, REGISTRAR)] == [undo]
    assert clearance.receive(db, "clearance.completed", clearance_completed("202301010104", late)) == "withdrawn"
    assert status_of(db, "202301010104") == "enrolled"
    assert clearance.list_problems(db, REGISTRAR) == []


def test_revoking_an_unmatched_event_withdraws_it(db: Database) -> None:
    lost, undo = str(uuid.uuid4()), str(uuid.uuid4())
    clearance.receive(db, "clearance.completed", clearance_completed("202301010199", lost))
    clearance.receive(db, "clearance.revoked", clearance_revoked("202301010199", undo, lost))
    states = problem_states(db)
    assert states[lost] == "withdrawn" and states[undo] == "unmatched"


def test_a_batch_of_clearance_events_applies_each_as_if_alone(db: Database) -> None:
    ids = [str(uuid.uuid4()) for _ in range(6)]
    late = str(uuid.uuid4())
    clearance.receive(db, "clearance.revoked", clearance_revoked("202301010105", str(uuid.uuid4()), late))
    batch = [
        clearance_completed("202301010101", ids[0]),
        clearance_completed("202301010101", ids[0]),                    # repeated inside the batch
        clearance_completed("202301010102", ids[1]),
        clearance_completed("202301010102", ids[2], outcome="completed"),  # same student again
        clearance_completed("202301010199", ids[3]),                    # unknown student
        {"event_id": ids[4], "garbage": True},                          # invalid body
        clearance_completed("202301010105", late),                      # revoked before it came
        clearance_completed("202301010103", ids[5]),
    ]
    states = clearance.receive_many(db, "clearance.completed", batch)
    assert states == ["applied", "duplicate", "applied", "conflict", "unmatched", "invalid", "withdrawn", "applied"]
    assert [status_of(db, n) for n in ("202301010101", "202301010102", "202301010103", "202301010105")] == [
        "graduated", "graduated", "graduated", "enrolled"]
    # One event per applied change, carrying that change's own id, in the order applied.
    changed = [e["payload"] for e in events(db, "student.status_changed")]
    assert [p["student_number"] for p in changed] == ["202301010101", "202301010102", "202301010103"]
    with db.reading() as s:
        rows = {r.event_id: r for r in s.scalars(select(ClearanceEvent))}
    assert [p["change_id"] for p in changed] == [rows[ids[0]].change_id, rows[ids[1]].change_id,
                                                 rows[ids[5]].change_id]
    assert len(set(p["change_id"] for p in changed)) == 3
    assert clearance.receive_many(db, "clearance.completed", batch) == ["duplicate"] * 8


def test_a_failing_batch_leaves_nothing_behind(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(clearance, "publish_status_change", broken)
    with pytest.raises(RuntimeError):
        clearance.receive_many(db, "clearance.completed", [
            clearance_completed("202301010101", str(uuid.uuid4())),
            clearance_completed("202301010102", str(uuid.uuid4()))])
    assert problem_states(db) == {}
    assert status_of(db, "202301010101") == status_of(db, "202301010102") == "enrolled"
    assert events(db, "student.status_changed") == []


def test_clearance_status_changes_are_in_the_audit_chain(db: Database) -> None:
    """Every clearance-driven change (batch, single, revocation) is a chained audit entry; a batch
    appends to the chain once, and the CLI verifies the chain afterwards."""
    from sqlalchemy import event

    from services.common.audit import verify_chain
    from services.common.models import AuditChainLink

    head_locks: list[str] = []

    def count_head_locks(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "audit_chain_head" in statement and statement.lstrip().upper().startswith("SELECT"):
            head_locks.append(statement)

    ids = [str(uuid.uuid4()) for _ in range(4)]
    event.listen(db.engine, "before_cursor_execute", count_head_locks)
    try:
        states = clearance.receive_many(db, "clearance.completed", [
            clearance_completed(f"20230101010{i}", ids[i - 1]) for i in range(1, 4)])
    finally:
        event.remove(db.engine, "before_cursor_execute", count_head_locks)
    assert states == ["applied"] * 3
    assert len(head_locks) == 1  # one chain append for the batch, not one per event
    clearance.receive(db, "clearance.completed", clearance_completed("202301010104", ids[3], outcome="completed"))
    undo = str(uuid.uuid4())
    assert clearance.receive(db, "clearance.revoked", clearance_revoked("202301010101", undo, ids[0])) == "applied"
    with db.reading() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.actor == "clearance").order_by(AuditEntry.id)).all()
        chained = set(s.scalars(select(AuditChainLink.audit_id)))
        report = verify_chain(s)
    assert [(e.action, e.target, e.role) for e in entries] == [
        ("status.graduate", "202301010101", "system"), ("status.graduate", "202301010102", "system"),
        ("status.graduate", "202301010103", "system"), ("status.complete", "202301010104", "system"),
        ("status.revoke", "202301010101", "system")]
    assert [json.loads(e.after)["clearance_event"] for e in entries] == [*ids, undo]
    assert json.loads(entries[0].before) == {"status": "enrolled"}
    assert json.loads(entries[-1].after)["status"] == "enrolled"
    assert {e.id for e in entries} <= chained
    assert report.ok, report
    import os
    import subprocess
    import sys

    env = {**os.environ, "ROSTER_DATABASE_URL": db.engine.url.render_as_string(hide_password=False)}
    verified = subprocess.run([sys.executable, "-m", "services.common.audit", "verify", "roster"],
                              env=env, capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout.strip().splitlines()[-1])["ok"] is True


def test_clearance_problem_decisions_are_chained(db: Database) -> None:
    from services.common.models import AuditChainLink

    clearance.receive(db, "clearance.completed", clearance_completed("202301010199", str(uuid.uuid4())))
    clearance.receive(db, "clearance.completed", {"garbage": True})
    unmatched, invalid = clearance.list_problems(db, REGISTRAR)
    clearance.reprocess(db, REGISTRAR, unmatched["id"])
    clearance.dismiss(db, REGISTRAR, invalid["id"], "离校系统已重发正确事件")
    with db.reading() as s:
        decided = s.scalars(select(AuditEntry.id).where(
            AuditEntry.action.in_(["clearance.reprocess", "clearance.dismiss"]))).all()
        chained = set(s.scalars(select(AuditChainLink.audit_id)))
    assert len(decided) == 2 and set(decided) <= chained
