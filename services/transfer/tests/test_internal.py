"""Changes inside the institution (T7): the rules as plain code, then filing, the two approvals and the move
through the roster port — real roster code on a real roster database (LocalRoster), real SQLite and
PostgreSQL, roster's events fed to transfer's read copy as the broker would."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.envelope import parse_envelope
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry, OutboxMessage
from services.roster import class_moves, importing, status_changes
from services.roster import handlers as roster_handlers
from services.transfer import handlers, internal
from services.transfer.domain import internal as rules
from services.transfer.tests.factories import caller
from services.transfer.tests.roster_local import LocalRoster

HERE, MAJOR_B, THERE = "2023010101", "2023010201", "2023020101"  # 计科 / 软件 (college 01), 数学 (college 02)
A, B = f"{HERE}01", f"{HERE}02"
REGISTRAR = caller("student_affairs")
ACADEMIC = caller("academic_affairs")
COUNSELOR = caller("counselor", "classes", HERE)
OTHER_COUNSELOR = caller("counselor", "classes", THERE)
DEPUTY_01 = caller("deputy_secretary", "college", "01")
DEPUTY_02 = Caller("u-d2", "deputy02", "deputy_secretary", Scope("college", ("02",)))
ORG = [
    {"code": "01", "name": "计算机学院", "kind": "college"},
    {"code": "02", "name": "数学学院", "kind": "college"},
    {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
    {"code": "0102", "name": "软件工程", "kind": "major", "parent_code": "01"},
    {"code": "0201", "name": "数学与应用数学", "kind": "major", "parent_code": "02"},
    {"code": HERE, "name": "计科2301", "kind": "class", "parent_code": "0101"},
    {"code": "2023010102", "name": "计科2302", "kind": "class", "parent_code": "0101"},
    {"code": MAJOR_B, "name": "软工2301", "kind": "class", "parent_code": "0102"},
    {"code": THERE, "name": "数学2301", "kind": "class", "parent_code": "0201"},
]


# ---- plain rules ---------------------------------------------------------------------------------------


def test_the_two_approvals_in_order_and_a_rejection_ends_it() -> None:
    assert rules.next_state(rules.PENDING_LEFT, True) == rules.PENDING_JOINED
    assert rules.next_state(rules.PENDING_JOINED, True) == rules.APPROVED
    assert rules.next_state(rules.PENDING_LEFT, False) == rules.REJECTED
    assert rules.next_state(rules.PENDING_JOINED, False) == rules.REJECTED
    for closed in (rules.APPROVED, rules.REJECTED):
        with pytest.raises(rules.InternalRefusal):
            rules.next_state(closed, True)


def test_who_decides_each_stage() -> None:
    deputy = Scope("college", ("01",))
    assert rules.decider_refusal("deputy_secretary", deputy, rules.PENDING_LEFT, "01", "02") is None
    refusal = rules.decider_refusal("deputy_secretary", deputy, rules.PENDING_JOINED, "01", "02")
    assert "调入单位（02）" in (refusal or "")
    assert rules.decider_refusal("deputy_secretary", deputy, rules.PENDING_JOINED, "02", "01") is None
    assert rules.decider_refusal("student_affairs", Scope("institution"), rules.PENDING_JOINED, "01", "02") is None
    assert rules.decider_refusal("counselor", Scope("classes", (HERE,)), rules.PENDING_LEFT, "01", "02")
    assert rules.decider_refusal("academic_affairs", Scope("institution"), rules.PENDING_LEFT, "01", "02")
    assert "不能再审核" in (rules.decider_refusal("student_affairs", Scope("institution"), rules.APPROVED, "01",
                                                  "02") or "")


def test_who_files_and_what_a_change_must_be() -> None:
    classes = Scope("classes", (HERE,))
    assert rules.filing_refusal("counselor", classes, A, "01", HERE) is None
    assert rules.filing_refusal("counselor", classes, "202302010101", "02", THERE)
    assert rules.filing_refusal("deputy_secretary", Scope("college", ("01",)), A, "01", HERE) is None
    assert rules.filing_refusal("housing_centre", Scope("institution"), A, "01", HERE)
    assert rules.change_problem("major", "enrolled", HERE, THERE, "0101", "0201", "01", "02") is None
    assert rules.change_problem("major", "enrolled", HERE, MAJOR_B, "0101", "0102", "01", "01") is None
    assert "同一专业" in (rules.change_problem("major", "enrolled", HERE, "2023010102", "0101", "0101", "01",
                                               "01") or "")
    assert "同一学习中心" in (rules.change_problem("study_centre", "enrolled", HERE, MAJOR_B, "0101", "0102", "01",
                                                 "01") or "")
    assert rules.change_problem("study_centre", "enrolled", HERE, THERE, "0101", "0201", "01", "02") is None
    assert "学籍状态" in (rules.change_problem("major", "withdrawn", HERE, THERE, "0101", "0201", "01", "02") or "")
    assert "已在班级" in (rules.change_problem("major", "enrolled", HERE, HERE, "0101", "0101", "01", "01") or "")
    assert "异动类型" in (rules.change_problem("campus", "enrolled", HERE, THERE, "0101", "0201", "01", "02") or "")


# ---- use cases -----------------------------------------------------------------------------------------


class Institution:
    """Roster and transfer of one institution, roster's events carried to transfer's read copy."""

    def __init__(self, roster_db: Database, transfer_db: Database) -> None:
        self.roster_db, self.db, self.roster = roster_db, transfer_db, LocalRoster(roster_db)
        self.delivered = 0

    def sync(self) -> None:
        with self.roster_db.reading() as s:
            rows = s.scalars(select(OutboxMessage).where(OutboxMessage.id > self.delivered)
                             .order_by(OutboxMessage.id)).all()
            messages = [(r.id, r.event_type, json.loads(r.body)) for r in rows]
        for row_id, event_type, body in messages:
            envelope = parse_envelope(body)
            if event_type == "student.registered":
                handlers.on_student_registered(self.db, envelope)
            elif event_type == "student.class_changed":
                handlers.on_student_class_changed(self.db, envelope)
            elif event_type == "student.status_changed":
                handlers.on_student_status_changed(self.db, envelope)
            self.delivered = row_id

    def student(self) -> dict[str, Any]:
        found = self.roster.student_identity(A)
        assert found is not None
        return found


@pytest.fixture
def school(migrated_db: Callable[[str], Database]) -> Institution:
    from services.roster.tests.test_import import IT, person, workbook

    roster_db = migrated_db("roster")
    roster_handlers.upsert_org_units(roster_db, system_caller("test"), ORG)
    assert importing.import_students(roster_db, IT, workbook([person(1), person(2)]))["ok"]
    institution = Institution(roster_db, migrated_db("transfer"))
    institution.sync()
    return institution


def audit_actions(db: Database) -> list[str]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("internal.%"))
                              .order_by(AuditEntry.id)))


def test_a_change_of_major_is_approved_by_both_colleges_then_applied(school: Institution) -> None:
    filed = internal.file_internal_change(school.db, COUNSELOR, school.roster, A, "major", THERE, "兴趣转向数学")
    assert (filed["state"], filed["state_label"], filed["from_unit"], filed["to_unit"], filed["awaiting_unit"]) == \
        ("pending_left", "待调出单位审核", "01", "02", "01")
    assert filed["name"] == "学生零一" and filed["kind_label"] == "转专业"
    with pytest.raises(Forbidden, match="调出单位"):  # the college joined does not decide first
        internal.decide_internal_change(school.db, DEPUTY_02, school.roster, filed["id"], True)
    left = internal.decide_internal_change(school.db, DEPUTY_01, school.roster, filed["id"], True, "同意")
    assert left["state"] == "pending_joined" and left["awaiting_unit"] == "02" and left["move"] is None
    with pytest.raises(Forbidden, match="调入单位"):
        internal.decide_internal_change(school.db, DEPUTY_01, school.roster, filed["id"], True)
    assert school.student()["class_code"] == HERE  # nothing moves before both approved
    done = internal.decide_internal_change(school.db, DEPUTY_02, school.roster, filed["id"], True)
    assert done["state"] == "approved" and done["awaiting_unit"] is None
    assert (done["move"]["new_class_code"], done["move"]["new_college_code"]) == (THERE, "02")
    assert "转专业：兴趣转向数学" in done["move"]["reason"]
    assert (school.student()["class_code"], school.student()["college_code"]) == (THERE, "02")
    [move] = class_moves.class_moves(school.roster_db, REGISTRAR, A)
    assert move["actor"] == "system:transfer" and f"校内异动 {filed['id']}" in move["reason"]
    assert [(a["stage"], a["unit"], a["by"], a["approve"]) for a in done["approvals"]] == [
        ("left", "01", DEPUTY_01.username, True), ("joined", "02", DEPUTY_02.username, True)]
    school.sync()  # roster's class_changed reaches transfer's read copy
    [listed] = internal.list_internal_changes(school.db, REGISTRAR)
    assert listed["class_code"] == THERE and listed["state"] == "approved"
    with pytest.raises(Conflict):
        internal.decide_internal_change(school.db, REGISTRAR, school.roster, filed["id"], True)
    assert audit_actions(school.db) == ["internal.file", "internal.decide", "internal.decide"]


def test_a_rejection_ends_it_and_needs_a_reason(school: Institution) -> None:
    filed = internal.file_internal_change(school.db, ACADEMIC, school.roster, A, "study_centre", THERE, "随家庭迁居")
    with pytest.raises(Conflict, match="未完成"):
        internal.file_internal_change(school.db, REGISTRAR, school.roster, A, "major", THERE, "再报")
    with pytest.raises(Invalid, match="理由"):
        internal.decide_internal_change(school.db, REGISTRAR, school.roster, filed["id"], False)
    internal.decide_internal_change(school.db, REGISTRAR, school.roster, filed["id"], True)
    rejected = internal.decide_internal_change(school.db, REGISTRAR, school.roster, filed["id"], False, "名额已满")
    assert rejected["state"] == "rejected" and rejected["approvals"][-1]["note"] == "名额已满"
    assert school.student()["class_code"] == HERE and "move_class" not in school.roster.calls
    with pytest.raises(Conflict, match="未通过"):
        internal.decide_internal_change(school.db, REGISTRAR, school.roster, filed["id"], True)
    # a new request may follow a rejected one
    assert internal.file_internal_change(school.db, REGISTRAR, school.roster, A, "major", MAJOR_B, "改学软件")[
        "state"] == "pending_left"


def test_what_cannot_be_filed(school: Institution) -> None:
    file = internal.file_internal_change
    with pytest.raises(Invalid, match="同一专业"):
        file(school.db, REGISTRAR, school.roster, A, "major", "2023010102", "换班")
    with pytest.raises(Invalid, match="同一学习中心"):
        file(school.db, REGISTRAR, school.roster, A, "study_centre", MAJOR_B, "换中心")
    with pytest.raises(Invalid, match="班级 2023099901 不存在"):
        file(school.db, REGISTRAR, school.roster, A, "major", "2023099901", "转")
    with pytest.raises(Invalid, match="异动类型"):
        file(school.db, REGISTRAR, school.roster, A, "campus", THERE, "转")
    with pytest.raises(Invalid, match="原因"):
        file(school.db, REGISTRAR, school.roster, A, "major", THERE, " ")
    with pytest.raises(NotFound):
        file(school.db, REGISTRAR, school.roster, "202301019999", "major", THERE, "转")
    with pytest.raises(Forbidden):  # unknown numbers are not told apart from others' students
        file(school.db, OTHER_COUNSELOR, school.roster, "202301019999", "major", THERE, "转")
    with pytest.raises(Forbidden):
        file(school.db, OTHER_COUNSELOR, school.roster, A, "major", THERE, "转")
    with pytest.raises(Forbidden):
        file(school.db, caller("housing_centre"), school.roster, A, "major", THERE, "转")
    status_changes.apply_status_change(school.roster_db, ACADEMIC, B, "withdraw", "2026-11-20", "本人申请", "申请书")
    with pytest.raises(Invalid, match="学籍状态"):
        file(school.db, REGISTRAR, school.roster, B, "major", THERE, "转")
    assert internal.list_internal_changes(school.db, REGISTRAR) == []


def test_a_move_that_fails_leaves_the_change_waiting_and_one_already_made_is_not_repeated(
        school: Institution) -> None:
    filed = internal.file_internal_change(school.db, REGISTRAR, school.roster, A, "major", THERE, "转数学")
    internal.decide_internal_change(school.db, REGISTRAR, school.roster, filed["id"], True)
    status_changes.apply_status_change(school.roster_db, ACADEMIC, A, "withdraw", "2026-11-20", "本人申请", "申请书")
    with pytest.raises(Invalid, match="不能调班"):
        internal.decide_internal_change(school.db, REGISTRAR, school.roster, filed["id"], True)
    [waiting] = internal.list_internal_changes(school.db, REGISTRAR, "pending_joined")
    assert waiting["id"] == filed["id"] and len(waiting["approvals"]) == 1
    # the withdrawal undone, and the student already put in the class (an earlier attempt whose commit failed)
    [change] = [c for c in status_changes.timeline(school.roster_db, ACADEMIC, A) if c["kind"] == "withdraw"]
    status_changes.revoke_status_change(school.roster_db, ACADEMIC, change["id"], "误操作")
    class_moves.move_class(school.roster_db, REGISTRAR, A, THERE, "转数学")
    done = internal.decide_internal_change(school.db, REGISTRAR, school.roster, filed["id"], True)
    assert done["state"] == "approved" and done["move"] == {"already": True, "new_class_code": THERE}
    assert len(class_moves.class_moves(school.roster_db, REGISTRAR, A)) == 1


def test_each_sees_the_changes_of_their_scope(school: Institution) -> None:
    first = internal.file_internal_change(school.db, DEPUTY_01, school.roster, A, "major", THERE, "转数学")
    internal.file_internal_change(school.db, REGISTRAR, school.roster, B, "major", MAJOR_B, "转软件")
    assert [c["student_number"] for c in internal.list_internal_changes(school.db, ACADEMIC)] == [B, A]
    assert [c["id"] for c in internal.list_internal_changes(school.db, DEPUTY_02)] == [first["id"]]  # joins 02
    assert len(internal.list_internal_changes(school.db, DEPUTY_01)) == 2
    assert len(internal.list_internal_changes(school.db, COUNSELOR)) == 2
    assert internal.list_internal_changes(school.db, OTHER_COUNSELOR) == []
    assert internal.list_internal_changes(school.db, caller("deputy_secretary", "college", "03")) == []
    assert [c["id"] for c in internal.list_internal_changes(school.db, REGISTRAR, "pending_left")][-1] == first["id"]
    assert internal.list_internal_changes(school.db, REGISTRAR, "approved") == []
    with pytest.raises(Invalid):
        internal.list_internal_changes(school.db, REGISTRAR, "lost")
    with pytest.raises(Forbidden):
        internal.list_internal_changes(school.db, caller("housing_centre"))
    with pytest.raises(NotFound):
        internal.decide_internal_change(school.db, REGISTRAR, school.roster, 999, True)


# ---- over the broker: transfer's RPCs, roster's RPCs behind the port as transfer's system caller ----------


def test_the_rpc_chain_from_transfer_to_roster(fresh_amqp_uri: str, container_factory: Any, tmp_path: Any) -> None:
    from nameko.standalone.rpc import ServiceRpcProxy

    from services.common.caller import CONTEXT_KEY
    from services.common.migrate import upgrade
    from services.common.topology import bindings_of, declare
    from services.roster.service import RosterService
    from services.roster.tests.test_import import IT, person, workbook
    from services.transfer.service import TransferService

    urls = {name: f"sqlite:///{tmp_path}/{name}.sqlite3" for name in ("roster", "transfer")}
    for name, url in urls.items():
        upgrade(name, url)
    roster_db = Database(urls["roster"])
    roster_handlers.upsert_org_units(roster_db, system_caller("test"), ORG)
    assert importing.import_students(roster_db, IT, workbook([person(1)]))["ok"]
    declare(fresh_amqp_uri, bindings_of([RosterService, TransferService]))
    for service, name in ((RosterService, "roster"), (TransferService, "transfer")):
        container_factory(service, {"AMQP_URI": fresh_amqp_uri, f"{name.upper()}_DATABASE_URL": urls[name]}).start()
    config = {"AMQP_URI": fresh_amqp_uri}
    office = {CONTEXT_KEY: REGISTRAR.to_header()}
    with ServiceRpcProxy("transfer", config, context_data=office) as transfer:
        filed = transfer.file_internal_change(A, "major", THERE, "转数学")
        transfer.decide_internal_change(filed["id"], True)
        done = transfer.decide_internal_change(filed["id"], True, "同意")
        assert done["state"] == "approved" and done["move"]["actor"] == "system:transfer"
        assert transfer.calendar_days(2026)["known"] is True
    with ServiceRpcProxy("roster", config, context_data={CONTEXT_KEY: system_caller("transfer").to_header()}) as roster:
        assert roster.transfer_identity(A)["class_code"] == THERE
        assert roster.transfer_identity("202301019999") is None
        assert roster.class_info(THERE)["college_code"] == "02"
    with ServiceRpcProxy("roster", config, context_data=office) as roster, pytest.raises(Forbidden):
        roster.mark_transferred_out("t-1", A, "转学")  # the transfer service's alone
    roster_db.dispose()
