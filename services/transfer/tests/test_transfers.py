"""The transfer workflow's use cases (transfers.py) on real SQLite and PostgreSQL: both sides of a transfer,
with roster's real use cases behind the port (`LocalRoster` over a migrated roster database) and the peer's
messages built as the contract says (`protocol.build_body`), fed to `apply_incoming` without a broker."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid
from services.common.models import AuditEntry
from services.roster import handlers as roster_handlers
from services.roster import importing
from services.roster.adapters.orm import Student as RosterStudent
from services.roster.tests.factories import national_id
from services.roster.tests.test_import import IT, person, workbook
from services.transfer import handlers, transfers
from services.transfer.adapters.orm import InterchangeMessage, Peer, Transfer, TransferSetting, TransferStage
from services.transfer.domain import protocol
from services.transfer.domain import workflow as wf
from services.transfer.tests.factories import registered
from services.transfer.tests.roster_local import LocalRoster

US, PEER, OTHER = "4142010001", "4133010002", "4111010003"
SYSTEM = system_caller("transfer")
REGISTRAR = Caller("1000001", "1000001", "student_affairs", Scope("institution"))
ACADEMIC = Caller("1000007", "1000007", "academic_affairs", Scope("institution"))
AUTHORITY = Caller("2000001", "2000001", "authority", Scope("area", ("420100",)))
COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
# Monday 7 September 2026, 10:00 in Beijing. 20 working days later is Saturday 10 October: Sunday 20
# September and Saturday 10 October are worked (调休); 25 September and 1–7 October are holidays.
NOW = datetime(2026, 9, 7, 2, 0, tzinfo=UTC)
TODAY = date(2026, 9, 7)
DEADLINE = date(2026, 10, 10)
TARGET = "2023010102"
ORG = [
    {"code": "01", "name": "计算机学院", "kind": "college"},
    {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
    {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
    {"code": TARGET, "name": "计科2302", "kind": "class", "parent_code": "0101"},
]
LEAVER = person(1)  # on our register, asked for by a peer's request
PDF = b"%PDF-1.4 transfer application"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
BORN = date(2004, 6, 1)
NEWCOMER_ID = national_id(BORN, "2", seq=301)  # a student of the peer who comes to us


@pytest.fixture(autouse=True)
def institution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFER_INSTITUTION_CODE", US)


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    database = migrated_db("transfer")
    with database.transaction() as s:
        s.add(Peer(code=PEER, name="湖北某大学", province="42", authority_code="420100", active=True, created_at=NOW))
        s.add(Peer(code=OTHER, name="北京某大学", province="11", authority_code="110000", active=True, created_at=NOW))
    return database


@pytest.fixture
def roster_db(migrated_db: Callable[[str], Database]) -> Database:
    database = migrated_db("roster")
    roster_handlers.upsert_org_units(database, system_caller("roster"), ORG)
    assert importing.import_students(database, IT, workbook([LEAVER, person(2)]))["ok"]
    return database


@pytest.fixture
def roster(roster_db: Database) -> LocalRoster:
    return LocalRoster(roster_db)


# ---- helpers ------------------------------------------------------------------------------------------


def newcomer(**changes: Any) -> dict[str, Any]:
    student = {"national_student_id": "", "name": "王小红", "gender": "2", "birth_date": BORN.isoformat(),
               "id_type": "1", "id_number": NEWCOMER_ID, "outflow_student_number": "202201020304"}
    student.update(changes)
    return student


def evidence(*files: tuple[str, bytes]) -> list[dict[str, str]]:
    return [{"filename": name, "data": base64.b64encode(data).decode()} for name, data in files]


def file(db: Database, roster: LocalRoster, caller: Caller = REGISTRAR, now: datetime = NOW,
         **changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"student": newcomer(), "peer_code": PEER, "transfer_kind": "intra_province",
                            "reason": "监护人工作调动", "target_class_code": TARGET,
                            "evidence": evidence(("转学申请表.pdf", PDF), ("户籍证明.png", PNG))}
    args.update(changes)
    return transfers.file_transfer(db, caller, roster, now=now, **args)


def received(kind: str, transfer_id: str, payload: dict[str, Any], *, sender: str = PEER) -> protocol.Received:
    """A peer's message as the transport hands it over once verified."""
    raw = protocol.build_body(kind=kind, transfer_id=transfer_id, sender=sender, recipient=US, sent_at=NOW,
                              payload=payload)
    body = protocol.Body.model_validate_json(raw)
    return protocol.Received(body, protocol.PAYLOADS[kind].model_validate(body.payload))


def deliver(db: Database, message: protocol.Received, roster: LocalRoster, now: datetime = NOW) -> None:
    with db.transaction() as s:
        transfers.apply_incoming(s, message, roster, now)


def refusal(db: Database, message: protocol.Received, roster: LocalRoster) -> str:
    """The ack error of a message the workflow refuses; it must have changed nothing."""
    before = dump(db)
    with pytest.raises(protocol.Refused) as caught:
        deliver(db, message, roster)
    assert dump(db) == before
    return caught.value.error


def decision(transfer_id: str, stage: str, approve: bool = True, reason: str | None = None,
             deadline_passed: bool = False) -> protocol.Received:
    return received(protocol.DECISION, transfer_id, {
        "stage": stage, "decision": "approved" if approve else "rejected", "reason": reason,
        "decided_at": "2026-09-10T16:00:00+08:00", "deadline_passed": deadline_passed})


def peer_record(transfer_id: str, **changes: Any) -> protocol.Received:
    record = {"student_number": "202201020304", "class_code": "2022010203", "college_code": "01", "name": "王小红",
              "gender": "2", "birth_date": BORN.isoformat(), "id_type": "1", "national_id": NEWCOMER_ID,
              "ethnicity": "01", "entry_month": "2022-09", "status_history": [], "rewards_and_sanctions": []}
    record.update(changes)
    return received(protocol.RECORD, transfer_id, {"record": record, "record_sha256": protocol.record_sha256(record),
                                                   "archived_at": "2026-09-20T09:00:00+08:00"})


def request(transfer_id: str | None = None, *, sender: str = PEER, **student_changes: Any) -> protocol.Received:
    student = {"national_student_id": "G" + LEAVER["national_id"], "name": LEAVER["name"], "gender": "1",
               "birth_date": LEAVER["birth_date"].isoformat(), "id_type": "1", "id_number": LEAVER["national_id"],
               "outflow_student_number": LEAVER["student_number"]}
    student.update(student_changes)
    student = {k: v for k, v in student.items() if v is not None}
    return received(protocol.REQUEST, transfer_id or str(uuid.uuid4()), {
        "student": student, "reason": "监护人工作调动", "transfer_kind": "intra_province",
        "inflow_approved_at": "2026-09-03T09:00:00+08:00", "inflow_authority": "330100",
        "evidence": [{"name": "转学申请表.pdf", "sha256": hashlib.sha256(PDF).hexdigest()}]}, sender=sender)


def cancel(transfer_id: str, reason: str = "家长改变主意") -> protocol.Received:
    return received(protocol.CANCEL, transfer_id, {"reason": reason})


def row(db: Database, transfer_id: str) -> Transfer:
    with db.reading() as s:
        found = s.get(Transfer, transfer_id)
        assert found is not None
        return found


def sent(db: Database, transfer_id: str) -> list[tuple[str, dict[str, Any], str]]:
    """Our outgoing messages of the transfer: (kind, payload, state), oldest first."""
    with db.reading() as s:
        rows = s.scalars(select(InterchangeMessage).where(InterchangeMessage.transfer_id == transfer_id,
                                                          InterchangeMessage.direction == "out")
                         .order_by(InterchangeMessage.id)).all()
        for m in rows:
            body = json.loads(m.body)
            assert (body["sender"], body["recipient"], body["transfer_id"]) == (US, m.peer_code, transfer_id)
        return [(m.kind or "", json.loads(m.body)["payload"], m.state) for m in rows]


def stages(db: Database, transfer_id: str) -> list[tuple[str, str, bool, str]]:
    with db.reading() as s:
        return [(r.stage, r.decision, r.deadline_passed, r.decided_by) for r in s.scalars(
            select(TransferStage).where(TransferStage.transfer_id == transfer_id).order_by(TransferStage.id))]


def dump(db: Database) -> tuple[Any, ...]:
    """Everything the workflow writes, to show that a refused message changed nothing."""
    with db.reading() as s:
        return (s.execute(select(Transfer.id, Transfer.state, Transfer.stage, Transfer.record_sha256)).all(),
                s.scalar(select(func.count()).select_from(TransferStage)),
                s.execute(select(InterchangeMessage.id, InterchangeMessage.state)).all(),
                s.scalar(select(func.count()).select_from(AuditEntry)))


def ack(db: Database, transfer_id: str, kind: str, roster: LocalRoster, result: str = "accepted",
        error: str | None = None, now: datetime = NOW) -> None:
    """The peer's ack of our latest message of `kind`, settled as the transport does it."""
    with db.transaction() as s:
        message = s.scalars(select(InterchangeMessage).where(
            InterchangeMessage.transfer_id == transfer_id, InterchangeMessage.direction == "out",
            InterchangeMessage.kind == kind).order_by(InterchangeMessage.id.desc())).first()
        assert message is not None
        message.state, message.error = ("rejected" if result == "rejected" else "acked"), error
        s.flush()
        transfers.on_acked(s, message, protocol.AckPayload(acked_message_id=message.message_id or "", result=result,
                                                            error=error), roster, now)


def roster_status(roster_db: Database, number: str) -> str:
    with roster_db.reading() as s:
        student = s.get(RosterStudent, number)
        assert student is not None
        return student.status


def set_setting(db: Database, key: str, value: Any) -> None:
    with db.transaction() as s:
        s.add(TransferSetting(key=key, value=json.dumps(value), updated_by="test", updated_at=NOW))


def audit_actions(db: Database, transfer_id: str) -> list[str]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry.action).where(AuditEntry.target == f"transfer:{transfer_id}")
                              .order_by(AuditEntry.id)))


def approved_inflow(db: Database, roster: LocalRoster) -> str:
    """A transfer we filed whose request went out (our authority approved)."""
    transfer_id = file(db, roster)["transfer_id"]
    transfers.decide_transfer(db, AUTHORITY, roster, transfer_id, "inflow_authority", True, now=NOW)
    return transfer_id


# ---- inflow: we receive the student ---------------------------------------------------------------------


def test_filing_keeps_the_evidence_and_gives_our_authority_a_deadline(db: Database, roster: LocalRoster) -> None:
    view = file(db, roster)
    transfer_id = view["transfer_id"]
    assert protocol.is_uuid(transfer_id)
    assert (view["direction"], view["direction_label"], view["state"], view["state_label"]) == \
        ("inflow", "转入", "inflow_authority", "待转入地主管部门审批")
    assert (view["stage"], view["stage_label"], view["stage_deadline"], view["days_left"]) == \
        ("inflow_authority", "转入地主管部门", DEADLINE.isoformat(), 20)
    assert view["student"]["national_student_id"] == "G" + NEWCOMER_ID  # none given: roster's convention
    assert (view["peer_name"], view["transfer_kind_label"], view["target_class_code"]) == \
        ("湖北某大学", "省内转学", TARGET)
    assert [(f["filename"], f["content_type"], f["size"]) for f in view["evidence_files"]] == \
        [("转学申请表.pdf", "application/pdf", len(PDF)), ("户籍证明.png", "image/png", len(PNG))]
    assert view["evidence"] == [{"name": "转学申请表.pdf", "sha256": hashlib.sha256(PDF).hexdigest()},
                                {"name": "户籍证明.png", "sha256": hashlib.sha256(PNG).hexdigest()}]
    assert stages(db, transfer_id) == [("inflow_school", "approved", False, REGISTRAR.username)]
    assert sent(db, transfer_id) == []  # the outflow side hears of it only after our authority approved
    assert audit_actions(db, transfer_id) == ["transfer.file"]
    got = transfers.transfer_evidence(db, ACADEMIC, transfer_id, view["evidence_files"][0]["id"])
    assert (got["filename"], base64.b64decode(got["data"])) == ("转学申请表.pdf", PDF)
    # days left count down over working days only: the holidays of October do not count
    later = transfers.get_transfer(db, AUTHORITY, transfer_id, today=date(2026, 9, 30))
    assert later["days_left"] == 3 and later["messages"] == []  # 8, 9 and (worked) Saturday 10 October


def test_filing_is_checked(db: Database, roster: LocalRoster) -> None:
    with pytest.raises(Invalid, match="PDF、JPEG 或 PNG"):
        file(db, roster, evidence=evidence(("申请.docx", b"PK\x03\x04 not a pdf")))
    with pytest.raises(Invalid, match="转入班级 2023019999 不存在"):
        file(db, roster, target_class_code="2023019999")
    with pytest.raises(Invalid, match="不是可用的对端单位"):
        file(db, roster, peer_code="4100000000")
    with pytest.raises(Invalid, match="不是可用的对端单位"):
        file(db, roster, peer_code=US)
    with pytest.raises(Invalid, match="转出学校的学号"):
        file(db, roster, student=newcomer(outflow_student_number=""))
    with pytest.raises(Invalid, match="出生日期"):
        file(db, roster, student=newcomer(birth_date="2004-02-30"))
    with pytest.raises(Invalid, match="转学原因"):
        file(db, roster, reason=" ")
    with pytest.raises(Forbidden):
        file(db, roster, caller=COUNSELOR)
    with pytest.raises(Forbidden):
        file(db, roster, caller=AUTHORITY)
    listed = transfers.list_transfers(db, REGISTRAR)
    assert listed["total"] == 0
    # the list's filter: every state in the order a transfer passes them, labelled here (not in the gateway)
    assert [(o["state"], o["state_label"]) for o in listed["state_options"]][:3] == \
        [("inflow_authority", "待转入地主管部门审批"), ("outflow_school", "待转出学校审核"),
         ("outflow_authority", "待转出地主管部门审批")]
    assert [o["state"] for o in listed["state_options"]] == list(wf.STATES)
    # across provinces the outflow number may be missing: the request carries the national student id
    view = file(db, roster, transfer_kind="inter_province", student=newcomer(outflow_student_number="",
                                                                           national_student_id="g2004"))
    assert (view["transfer_kind"], view["outflow_student_number"], view["student"]["national_student_id"]) == \
        ("inter_province", None, "G2004")
    with pytest.raises(Conflict, match="已有办理中的转学申请"):  # one student, one transfer in progress
        file(db, roster, transfer_kind="inter_province", student=newcomer(outflow_student_number="",
                                                                        national_student_id="G2004"))
    transfers.cancel_transfer(db, REGISTRAR, view["transfer_id"], "家长改变主意", now=NOW)
    assert file(db, roster, transfer_kind="inter_province",
                student=newcomer(outflow_student_number="", national_student_id="G2004"))["state"] == "inflow_authority"


def test_out_of_term_filing_needs_a_reason(db: Database, roster: LocalRoster) -> None:
    set_setting(db, "term_windows", [{"start": "2026-09-01", "end": "2026-09-30"},
                                     {"start": "2027-01-01", "end": "2027-01-31"}])
    assert file(db, roster)["out_of_term_reason"] is None  # 7 September: the first month of the term
    october = datetime(2026, 10, 15, 2, 0, tzinfo=UTC)
    with pytest.raises(Invalid, match="非常规时段转学原因") as refused:
        file(db, roster, now=october)
    assert refused.value.field == "out_of_term_reason"  # what the form keys on, not the wording
    view = file(db, roster, now=october, out_of_term_reason="家庭突发变故", student=newcomer(national_student_id="G2"))
    assert view["out_of_term_reason"] == "家庭突发变故"


def test_the_authority_setting_shortens_the_deadline(db: Database, roster: LocalRoster) -> None:
    set_setting(db, "deadline_days_by_authority", {"420100": 10})  # ours, read from 4142010001
    assert file(db, roster)["stage_deadline"] == "2026-09-20"  # a Sunday worked in exchange
    set_setting(db, "authority_code", "429000")  # configured: another authority, the general 20 days
    assert file(db, roster, student=newcomer(national_student_id="G2"))["stage_deadline"] == DEADLINE.isoformat()


def test_the_approved_path_of_a_student_who_comes_to_us(db: Database, roster: LocalRoster,
                                                        roster_db: Database) -> None:
    transfer_id = file(db, roster)["transfer_id"]
    with pytest.raises(Forbidden):  # the authority's stage
        transfers.decide_transfer(db, REGISTRAR, roster, transfer_id, "inflow_authority", True, now=NOW)
    with pytest.raises(Conflict, match="不由本校审核"):
        transfers.decide_transfer(db, REGISTRAR, roster, transfer_id, "outflow_school", True, now=NOW)
    view = transfers.decide_transfer(db, AUTHORITY, roster, transfer_id, "inflow_authority", True, now=NOW)
    assert (view["state"], view["stage"], view["stage_deadline"], view["days_left"]) == \
        ("outflow_school", "outflow_school", None, None)  # the peer's stage: its deadline is the peer's
    [(kind, payload, state)] = sent(db, transfer_id)
    assert (kind, state) == ("transfer.request", "pending")
    assert payload == {
        "student": {"national_student_id": "G" + NEWCOMER_ID, "name": "王小红", "gender": "2",
                    "birth_date": "2004-06-01", "id_type": "1", "id_number": NEWCOMER_ID,
                    "outflow_student_number": "202201020304"},
        "reason": "监护人工作调动", "transfer_kind": "intra_province",
        "inflow_approved_at": "2026-09-07T10:00:00+08:00", "inflow_authority": "420100",
        "evidence": [{"name": "转学申请表.pdf", "sha256": hashlib.sha256(PDF).hexdigest()},
                     {"name": "户籍证明.png", "sha256": hashlib.sha256(PNG).hexdigest()}]}
    ack(db, transfer_id, protocol.REQUEST, roster)
    assert row(db, transfer_id).state == "outflow_school"

    deliver(db, decision(transfer_id, "outflow_school"), roster)
    assert row(db, transfer_id).state == "outflow_authority"
    deliver(db, decision(transfer_id, "outflow_authority"), roster)
    assert row(db, transfer_id).state == "record_pending"
    assert "admit_transfer" not in roster.calls
    deliver(db, peer_record(transfer_id), roster)
    done = transfers.get_transfer(db, REGISTRAR, transfer_id, today=TODAY)
    assert (done["state"], done["state_label"], done["stage"], done["inflow_student_number"]) == \
        ("completed", "已完成", None, f"{TARGET}01")
    assert done["record"]["national_id"] == NEWCOMER_ID and done["record_sha256"] == \
        peer_record(transfer_id).payload.record_sha256  # type: ignore[attr-defined]
    assert [(s["stage"], s["decision"]) for s in done["stages"]] == [
        ("inflow_school", "approved"), ("inflow_authority", "approved"), ("outflow_school", "approved"),
        ("outflow_authority", "approved")]
    # roster created the student in the class joined, new number, the same national student id
    identity = roster.student_identity(f"{TARGET}01")
    assert identity is not None
    assert (identity["name"], identity["class_code"], identity["national_student_id"], identity["status"]) == \
        ("王小红", TARGET, "G" + NEWCOMER_ID, "enrolled")
    assert [kind for kind, _, _ in sent(db, transfer_id)] == ["transfer.request"]  # decisions are not answered here
    assert audit_actions(db, transfer_id) == [
        "transfer.file", "transfer.decide", "transfer.incoming_decision", "transfer.incoming_decision",
        "transfer.admit", "transfer.incoming_record"]
    # the same pieces again (another message id): nothing happens twice
    deliver(db, decision(transfer_id, "outflow_authority"), roster)
    deliver(db, peer_record(transfer_id), roster)
    assert roster.calls.count("admit_transfer") == 1 and len(stages(db, transfer_id)) == 4
    assert refusal(db, peer_record(transfer_id, name="王小明"), roster) == "invalid_state"
    assert refusal(db, decision(transfer_id, "outflow_school", False, "迟到的拒绝"), roster) == "invalid_state"


def test_decisions_and_the_record_may_arrive_in_any_order(db: Database, roster: LocalRoster) -> None:
    transfer_id = approved_inflow(db, roster)
    deliver(db, peer_record(transfer_id), roster)  # the record overtook both decisions: kept, waiting
    assert (row(db, transfer_id).state, row(db, transfer_id).record_sha256 is not None) == ("outflow_school", True)
    deliver(db, decision(transfer_id, "outflow_authority"), roster)  # overtook the school's decision
    assert row(db, transfer_id).state == "outflow_school" and "admit_transfer" not in roster.calls
    deliver(db, decision(transfer_id, "outflow_school"), roster)  # the last piece: complete
    t = row(db, transfer_id)
    assert (t.state, t.inflow_student_number) == ("completed", f"{TARGET}01")
    assert refusal(db, decision(transfer_id, "outflow_school", False, "改主意"), roster) == "invalid_state"


def test_a_rejection_at_each_stage_ends_an_inflow_transfer(db: Database, roster: LocalRoster) -> None:
    # our authority: the outflow side never heard of it, so nothing is sent
    ours = file(db, roster)["transfer_id"]
    with pytest.raises(Invalid, match="理由"):
        transfers.decide_transfer(db, AUTHORITY, roster, ours, "inflow_authority", False, now=NOW)
    view = transfers.decide_transfer(db, AUTHORITY, roster, ours, "inflow_authority", False, "材料不全", now=NOW)
    assert (view["state"], view["outcome_reason"], sent(db, ours)) == ("rejected", "转入地主管部门不同意：材料不全", [])
    with pytest.raises(Conflict):
        transfers.decide_transfer(db, AUTHORITY, roster, ours, "inflow_authority", True, now=NOW)
    assert refusal(db, decision(ours, "outflow_school"), roster) == "invalid_state"  # a request never sent

    school = approved_inflow(db, roster)
    deliver(db, decision(school, "outflow_school", False, "student_mismatch"), roster)
    assert (row(db, school).state, row(db, school).outcome_reason) == ("rejected", "转出学校不同意：学生信息不符")

    authority = approved_inflow(db, roster)
    deliver(db, decision(authority, "outflow_school"), roster)
    deliver(db, decision(authority, "outflow_authority", False, "不符合转学条件"), roster)
    assert (row(db, authority).state, row(db, authority).outcome_reason) == \
        ("rejected", "转出地主管部门不同意：不符合转学条件")
    assert refusal(db, peer_record(authority), roster) == "invalid_state"
    assert "admit_transfer" not in roster.calls


def test_messages_of_transfers_the_peer_has_no_part_in_are_refused(db: Database, roster: LocalRoster) -> None:
    transfer_id = approved_inflow(db, roster)
    assert refusal(db, decision(str(uuid.uuid4()), "outflow_school"), roster) == "unknown_transfer"
    stranger = received(protocol.DECISION, transfer_id, decision(transfer_id, "outflow_school").body.payload,
                        sender=OTHER)
    assert refusal(db, stranger, roster) == "unknown_transfer"  # another institution's transfer
    assert refusal(db, peer_record(str(uuid.uuid4())), roster) == "unknown_transfer"
    assert refusal(db, request(transfer_id), roster) == "invalid_state"  # our own transfer id sent back


def test_a_record_roster_cannot_admit_waits_and_is_retried(db: Database, roster: LocalRoster) -> None:
    transfer_id = approved_inflow(db, roster)
    deliver(db, decision(transfer_id, "outflow_school"), roster)
    deliver(db, decision(transfer_id, "outflow_authority"), roster)
    # the same person is on our register already (R14): roster refuses; the message is still taken
    deliver(db, peer_record(transfer_id, national_id=LEAVER["national_id"]), roster)
    t = row(db, transfer_id)
    assert (t.state, t.inflow_student_number) == ("record_pending", None)
    assert t.outcome_reason is not None and t.outcome_reason.startswith("学籍建档失败：")
    assert transfers.run_deadlines(db, SYSTEM, roster, now=NOW) == {"approved": 0, "admitted": 0, "failed": 0}
    assert roster.calls.count("admit_transfer") == 2  # retried by the deadline job, still refused


# ---- outflow: the student leaves us ---------------------------------------------------------------------


def test_the_approved_path_of_a_student_who_leaves_us(db: Database, roster: LocalRoster,
                                                      roster_db: Database) -> None:
    message = request()
    transfer_id = message.body.transfer_id
    deliver(db, message, roster)
    view = transfers.get_transfer(db, REGISTRAR, transfer_id, today=TODAY)
    assert (view["direction"], view["direction_label"], view["state"], view["stage"]) == \
        ("outflow", "转出", "outflow_school", "outflow_school")
    assert (view["stage_deadline"], view["days_left"], view["outflow_student_number"]) == \
        (DEADLINE.isoformat(), 20, LEAVER["student_number"])
    assert view["evidence"] == [{"name": "转学申请表.pdf", "sha256": hashlib.sha256(PDF).hexdigest()}]
    assert sent(db, transfer_id) == []  # the transport acks the request; the workflow answers with decisions
    with pytest.raises(Forbidden):
        transfers.decide_transfer(db, AUTHORITY, roster, transfer_id, "outflow_school", True, now=NOW)
    with pytest.raises(Conflict):  # stages decide in order
        transfers.decide_transfer(db, AUTHORITY, roster, transfer_id, "outflow_authority", True, now=NOW)

    later = NOW + timedelta(days=2)
    view = transfers.decide_transfer(db, ACADEMIC, roster, transfer_id, "outflow_school", True, now=later)
    assert (view["state"], view["stage_deadline"]) == ("outflow_authority", "2026-10-13")  # from 9 September
    assert sent(db, transfer_id) == [("transfer.decision", {
        "stage": "outflow_school", "decision": "approved", "reason": None,
        "decided_at": "2026-09-09T10:00:00+08:00", "deadline_passed": False}, "pending")]
    assert roster_status(roster_db, LEAVER["student_number"]) == "enrolled"

    view = transfers.decide_transfer(db, AUTHORITY, roster, transfer_id, "outflow_authority", True, now=later)
    assert (view["state"], view["state_label"], view["stage"]) == ("record_sent", "档案已发送，待对方确认", None)
    kinds = [(kind, payload.get("stage"), payload.get("decision")) for kind, payload, _ in sent(db, transfer_id)]
    assert kinds == [("transfer.decision", "outflow_school", "approved"),
                     ("transfer.decision", "outflow_authority", "approved"), ("transfer.record", None, None)]
    record_payload = sent(db, transfer_id)[2][1]
    record = record_payload["record"]
    assert (record["student_number"], record["name"], record["national_id"]) == \
        (LEAVER["student_number"], LEAVER["name"], LEAVER["national_id"])
    assert record_payload["record_sha256"] == protocol.record_sha256(record)
    # the archived copy stays (T6) while roster's record is 转出
    assert view["record"] == record and view["record_sha256"] == record_payload["record_sha256"]
    assert roster_status(roster_db, LEAVER["student_number"]) == "transferred_out"
    assert roster.calls[-2:] == ["transfer_record", "mark_transferred_out"]
    with pytest.raises(Conflict, match="学籍档案已发送"):
        transfers.cancel_transfer(db, REGISTRAR, transfer_id, "不转了", now=later)
    assert refusal(db, cancel(transfer_id), roster) == "invalid_state"

    ack(db, transfer_id, protocol.RECORD, roster)
    assert row(db, transfer_id).state == "completed"
    assert audit_actions(db, transfer_id) == ["transfer.incoming_request", "transfer.decide", "transfer.decide",
                                              "transfer.record_acked"]


def test_a_request_for_someone_else_is_rejected_as_a_mismatch(db: Database, roster: LocalRoster) -> None:
    cases = {"birth date": {"birth_date": "2005-03-15"}, "name": {"name": "别人"},
             "ID number": {"id_number": national_id(date(2005, 3, 14), "1", seq=99)},
             "unknown number": {"outflow_student_number": "202301019999"}}
    for case, changes in cases.items():
        message = request(**changes)
        deliver(db, message, roster)
        transfer_id = message.body.transfer_id
        assert row(db, transfer_id).state == "rejected", case
        assert sent(db, transfer_id) == [("transfer.decision", {
            "stage": "outflow_school", "decision": "rejected", "reason": "student_mismatch",
            "decided_at": "2026-09-07T10:00:00+08:00", "deadline_passed": False}, "pending")], case
    assert row(db, message.body.transfer_id).outcome_reason == "学生信息不符：学号"
    # spacing, full-width digits and a lower-case check digit are the same person
    same = request(name=f" {LEAVER['name']} ", id_number=LEAVER["national_id"].lower())
    deliver(db, same, roster)
    assert row(db, same.body.transfer_id).state == "outflow_school"


def test_across_provinces_the_student_is_found_by_national_student_id(db: Database, roster: LocalRoster) -> None:
    found = request(outflow_student_number=None)
    deliver(db, found, roster)
    t = row(db, found.body.transfer_id)
    assert (t.state, t.outflow_student_number) == ("outflow_school", LEAVER["student_number"])
    other_id = request(outflow_student_number=None, national_student_id="G999")
    deliver(db, other_id, roster)
    assert row(db, other_id.body.transfer_id).state == "rejected"
    nobody = request(outflow_student_number=None, id_number=national_id(date(2005, 3, 14), "1", seq=99))
    deliver(db, nobody, roster)
    assert row(db, nobody.body.transfer_id).state == "rejected"


def test_a_student_who_has_left_is_not_transferred_out(db: Database, roster: LocalRoster) -> None:
    handlers.on_student_registered(db, registered(LEAVER["student_number"], status="graduated", left=True))
    message = request()
    deliver(db, message, roster)
    t = row(db, message.body.transfer_id)
    assert (t.state, t.outcome_reason) == ("rejected", "学生已离校，不能办理转出")
    [(_, payload, _)] = sent(db, t.id)
    assert (payload["decision"], payload["reason"]) == ("rejected", "学生已离校，不能办理转出")


def test_a_rejection_at_each_outflow_stage_is_sent_and_ends_it(db: Database, roster: LocalRoster,
                                                              roster_db: Database) -> None:
    school = request()
    deliver(db, school, roster)
    transfers.decide_transfer(db, REGISTRAR, roster, school.body.transfer_id, "outflow_school", False, "学籍异常",
                              now=NOW)
    assert row(db, school.body.transfer_id).state == "rejected"
    assert [(p["stage"], p["decision"], p["reason"]) for _, p, _ in sent(db, school.body.transfer_id)] == \
        [("outflow_school", "rejected", "学籍异常")]

    authority = request()
    deliver(db, authority, roster)
    transfers.decide_transfer(db, REGISTRAR, roster, authority.body.transfer_id, "outflow_school", True, now=NOW)
    transfers.decide_transfer(db, AUTHORITY, roster, authority.body.transfer_id, "outflow_authority", False,
                              "不符合政策", now=NOW)
    assert row(db, authority.body.transfer_id).state == "rejected"
    assert [(p["stage"], p["decision"]) for _, p, _ in sent(db, authority.body.transfer_id)] == \
        [("outflow_school", "approved"), ("outflow_authority", "rejected")]
    assert roster_status(roster_db, LEAVER["student_number"]) == "enrolled"
    assert "transfer_record" not in roster.calls


# ---- deadlines (T4) ----------------------------------------------------------------------------------------


def test_each_of_our_stages_is_approved_by_default_once_its_deadline_passed(db: Database, roster: LocalRoster,
                                                                          roster_db: Database) -> None:
    inflow = file(db, roster)["transfer_id"]
    outflow = request()
    deliver(db, outflow, roster)
    leaving = outflow.body.transfer_id
    on_deadline = DEADLINE.isoformat()
    assert transfers.run_deadlines(db, SYSTEM, roster, as_of=on_deadline)["approved"] == 0  # the last day
    with pytest.raises(Forbidden):  # only the system moves the clock
        transfers.run_deadlines(db, REGISTRAR, roster, as_of="2026-10-12")
    with pytest.raises(Forbidden):
        transfers.run_deadlines(db, AUTHORITY, roster)

    first = transfers.run_deadlines(db, SYSTEM, roster, as_of="2026-10-12")
    assert first == {"approved": 2, "admitted": 0, "failed": 0}
    assert transfers.run_deadlines(db, SYSTEM, roster, as_of="2026-10-12")["approved"] == 0  # idempotent
    # inflow: our authority's stage approved by default, the request went out
    assert row(db, inflow).state == "outflow_school"
    assert stages(db, inflow)[-1] == ("inflow_authority", "approved", True, SYSTEM.username)
    assert [kind for kind, _, _ in sent(db, inflow)] == ["transfer.request"]
    # outflow: our school's stage approved by default; the authority's deadline starts on 12 October
    t = row(db, leaving)
    assert (t.state, t.stage_deadline) == ("outflow_authority", date(2026, 11, 9))
    [(_, payload, _)] = sent(db, leaving)
    assert (payload["stage"], payload["decision"], payload["deadline_passed"], payload["reason"]) == \
        ("outflow_school", "approved", True, "逾期未审核，默认同意")
    assert transfers.run_deadlines(db, SYSTEM, roster, as_of="2026-11-09")["approved"] == 0
    # the peer's stages never pass by our clock
    assert transfers.run_deadlines(db, SYSTEM, roster, as_of="2027-06-01") == \
        {"approved": 1, "admitted": 0, "failed": 0}
    assert stages(db, leaving)[-1] == ("outflow_authority", "approved", True, SYSTEM.username)
    assert [(k, p.get("deadline_passed")) for k, p, _ in sent(db, leaving)] == \
        [("transfer.decision", True), ("transfer.decision", True), ("transfer.record", None)]
    assert row(db, leaving).state == "record_sent" and row(db, inflow).state == "outflow_school"
    assert roster_status(roster_db, LEAVER["student_number"]) == "transferred_out"
    assert audit_actions(db, leaving).count("transfer.deadline_approve") == 2


# ---- cancel ------------------------------------------------------------------------------------------------


def test_cancelling_before_the_request_went_out_tells_nobody(db: Database, roster: LocalRoster) -> None:
    transfer_id = file(db, roster)["transfer_id"]
    with pytest.raises(Forbidden):
        transfers.cancel_transfer(db, AUTHORITY, transfer_id, "撤回", now=NOW)
    with pytest.raises(Invalid):
        transfers.cancel_transfer(db, REGISTRAR, transfer_id, "", now=NOW)
    view = transfers.cancel_transfer(db, REGISTRAR, transfer_id, "家长撤回申请", now=NOW)
    assert (view["state"], view["state_label"], view["stage"], view["days_left"]) == ("cancelled", "已撤销", None, None)
    assert view["outcome_reason"] == "本校撤销：家长撤回申请" and sent(db, transfer_id) == []
    with pytest.raises(Conflict, match="已撤销"):
        transfers.cancel_transfer(db, REGISTRAR, transfer_id, "再撤一次", now=NOW)
    assert transfers.run_deadlines(db, SYSTEM, roster, as_of="2027-01-01")["approved"] == 0


def test_a_cancel_is_sent_and_undelivered_messages_stay_unsent(db: Database, roster: LocalRoster) -> None:
    transfer_id = approved_inflow(db, roster)  # the request is still pending (the peer is down)
    transfers.cancel_transfer(db, ACADEMIC, transfer_id, "家长撤回申请", now=NOW)
    assert [(k, p, st) for k, p, st in sent(db, transfer_id)] == [
        ("transfer.request", sent(db, transfer_id)[0][1], "cancelled"),
        ("transfer.cancel", {"reason": "家长撤回申请"}, "pending")]
    # a decision sent before the peer saw the cancel is kept for the history, and changes nothing
    deliver(db, decision(transfer_id, "outflow_school"), roster)
    assert row(db, transfer_id).state == "cancelled"

    leaving = request()
    deliver(db, leaving, roster)
    transfers.decide_transfer(db, REGISTRAR, roster, leaving.body.transfer_id, "outflow_school", True, now=NOW)
    transfers.cancel_transfer(db, REGISTRAR, leaving.body.transfer_id, "学生留校", now=NOW)
    assert [(k, st) for k, _, st in sent(db, leaving.body.transfer_id)] == \
        [("transfer.decision", "cancelled"), ("transfer.cancel", "pending")]


def test_the_peer_cancels(db: Database, roster: LocalRoster) -> None:
    inflow = approved_inflow(db, roster)
    deliver(db, decision(inflow, "outflow_school"), roster)
    deliver(db, cancel(inflow, "学生不再转出"), roster)
    t = row(db, inflow)
    assert (t.state, t.stage, t.outcome_reason) == ("cancelled", None, "对方撤销：学生不再转出")
    assert [st for _, _, st in sent(db, inflow)] == ["cancelled"]  # our request, never delivered
    deliver(db, cancel(inflow), roster)  # again: nothing more
    assert refusal(db, peer_record(inflow), roster) == "invalid_state"

    outflow = request()
    deliver(db, outflow, roster)
    transfers.decide_transfer(db, REGISTRAR, roster, outflow.body.transfer_id, "outflow_school", True, now=NOW)
    deliver(db, cancel(outflow.body.transfer_id), roster)
    assert row(db, outflow.body.transfer_id).state == "cancelled"
    assert [st for _, _, st in sent(db, outflow.body.transfer_id)] == ["cancelled"]
    with pytest.raises(Conflict):
        transfers.decide_transfer(db, AUTHORITY, roster, outflow.body.transfer_id, "outflow_authority", True, now=NOW)
    assert transfers.list_transfers(db, REGISTRAR, state="cancelled")["total"] == 2


def test_a_cancel_that_overtook_its_request_wins(db: Database, roster: LocalRoster) -> None:
    transfer_id = str(uuid.uuid4())
    deliver(db, cancel(transfer_id, "撤回"), roster)
    deliver(db, request(transfer_id), roster)
    t = row(db, transfer_id)
    assert (t.state, t.name, t.outflow_student_number) == ("cancelled", LEAVER["name"], LEAVER["student_number"])
    assert sent(db, transfer_id) == [] and "student_identity" not in roster.calls
    assert refusal(db, request(transfer_id), roster) == "invalid_state"  # a second request with that id


def test_a_cancel_the_peer_refuses_leaves_the_transfer_going(db: Database, roster: LocalRoster) -> None:
    # the outflow side sent the record before it saw our cancel: the record wins, the student comes
    transfer_id = approved_inflow(db, roster)
    ack(db, transfer_id, protocol.REQUEST, roster)
    deliver(db, decision(transfer_id, "outflow_school"), roster)
    deliver(db, decision(transfer_id, "outflow_authority"), roster)
    transfers.cancel_transfer(db, REGISTRAR, transfer_id, "撤回", now=NOW)
    with db.transaction() as s:  # the transport published the cancel
        for m in s.scalars(select(InterchangeMessage).where(InterchangeMessage.kind == protocol.CANCEL)):
            m.state = "sent"
    deliver(db, peer_record(transfer_id), roster)
    t = row(db, transfer_id)
    assert (t.state, t.inflow_student_number) == ("completed", f"{TARGET}01")
    ack(db, transfer_id, protocol.CANCEL, roster, "rejected", "invalid_state")
    assert row(db, transfer_id).state == "completed"

    # refused before anything came: back where it was, undelivered messages go again
    leaving = request()
    deliver(db, leaving, roster)
    transfers.decide_transfer(db, REGISTRAR, roster, leaving.body.transfer_id, "outflow_school", True, now=NOW)
    transfers.cancel_transfer(db, REGISTRAR, leaving.body.transfer_id, "撤回", now=NOW)
    later = NOW + timedelta(days=7)
    ack(db, leaving.body.transfer_id, protocol.CANCEL, roster, "rejected", "unknown_transfer", now=later)
    t = row(db, leaving.body.transfer_id)
    assert (t.state, t.stage_deadline) == ("outflow_authority", date(2026, 10, 16))  # from 14 September
    assert t.outcome_reason == "对方未接受撤销（unknown_transfer），转学继续"
    assert [(k, st) for k, _, st in sent(db, leaving.body.transfer_id)] == \
        [("transfer.decision", "pending"), ("transfer.cancel", "rejected")]


def test_messages_the_peer_refuses(db: Database, roster: LocalRoster) -> None:
    # a refused request: the outflow side never took it, so the transfer ends
    transfer_id = approved_inflow(db, roster)
    ack(db, transfer_id, protocol.REQUEST, roster, "rejected", "bad_schema")
    t = row(db, transfer_id)
    assert (t.state, t.outcome_reason) == ("rejected", "对方拒收转学申请（bad_schema）")
    assert audit_actions(db, transfer_id)[-1] == "transfer.message_rejected"
    # a refused record: the student has left our register already; staff are told to sort it out
    leaving = request()
    deliver(db, leaving, roster)
    transfers.decide_transfer(db, REGISTRAR, roster, leaving.body.transfer_id, "outflow_school", True, now=NOW)
    with pytest.raises(Invalid, match="审核结果"):
        transfers.decide_transfer(db, AUTHORITY, roster, leaving.body.transfer_id, "outflow_authority",
                                  "false", now=NOW)  # type: ignore[arg-type]
    transfers.decide_transfer(db, AUTHORITY, roster, leaving.body.transfer_id, "outflow_authority", True, now=NOW)
    ack(db, leaving.body.transfer_id, protocol.RECORD, roster, "rejected", "bad_schema")
    t = row(db, leaving.body.transfer_id)
    assert (t.state, t.outcome_reason) == ("record_sent", "对方拒收学籍档案（bad_schema），请与对方联系")


# ---- views --------------------------------------------------------------------------------------------------


def test_lists_filter_search_and_page(db: Database, roster: LocalRoster) -> None:
    inflow = file(db, roster)["transfer_id"]
    outflow = request()
    deliver(db, outflow, roster)
    everything = transfers.list_transfers(db, AUTHORITY, today=TODAY)
    assert everything["total"] == 2 and {i["days_left"] for i in everything["items"]} == {20}
    assert [i["transfer_id"] for i in transfers.list_transfers(db, REGISTRAR, direction="outflow")["items"]] == \
        [outflow.body.transfer_id]
    assert [i["transfer_id"] for i in transfers.list_transfers(db, REGISTRAR, state="inflow_authority")["items"]] == \
        [inflow]
    assert transfers.list_transfers(db, REGISTRAR, q="王小")["items"][0]["transfer_id"] == inflow
    assert transfers.list_transfers(db, REGISTRAR, q=LEAVER["student_number"])["total"] == 1
    assert transfers.list_transfers(db, REGISTRAR, q=inflow[:8])["total"] == 1
    page = transfers.list_transfers(db, REGISTRAR, page=2, per_page=1)
    assert (page["total"], len(page["items"]), page["page"]) == (2, 1, 2)
    with pytest.raises(Invalid):
        transfers.list_transfers(db, REGISTRAR, direction="sideways")
    with pytest.raises(Invalid):
        transfers.list_transfers(db, REGISTRAR, per_page=1000)
    with pytest.raises(Forbidden):
        transfers.list_transfers(db, COUNSELOR)
    with pytest.raises(Forbidden):
        transfers.get_transfer(db, COUNSELOR, inflow)


# ---- two institutions, each with its own databases, talking through signed messages -------------------------


@pytest.fixture
def peer_side(migrated_db: Callable[[str], Database]) -> Iterator[tuple[Database, LocalRoster]]:
    """The peer institution: its own transfer and roster databases; the newcomer is on its register."""
    tdb, rdb = migrated_db("transfer"), migrated_db("roster")
    with tdb.transaction() as s:
        s.add(Peer(code=US, name="本校", province="42", authority_code="420100", active=True, created_at=NOW))
    roster_handlers.upsert_org_units(rdb, system_caller("roster"), [
        {"code": "01", "name": "信息学院", "kind": "college"},
        {"code": "0102", "name": "软件工程", "kind": "major", "parent_code": "01"},
        {"code": "2022010203", "name": "软工2203", "kind": "class", "parent_code": "0102"}])
    student = person(4, klass="2022010203", name="王小红", gender="女", birth_date=BORN, national_id=NEWCOMER_ID)
    assert importing.import_students(rdb, IT, workbook([student]))["ok"]
    yield tdb, LocalRoster(rdb)


def relay(source: Database, source_code: str, target: Database, target_code: str, roster: LocalRoster,
          source_roster: LocalRoster, monkeypatch: pytest.MonkeyPatch) -> int:
    """What two transports do: every pending message of `source` signed, verified by `target` and applied
    there, then acked back. Returns how many went."""
    key = {(source_code, "k1"): b"s" * 32}
    with source.transaction() as s:
        pending = s.scalars(select(InterchangeMessage).where(InterchangeMessage.direction == "out",
                                                             InterchangeMessage.state == "pending")
                            .order_by(InterchangeMessage.id)).all()
        outgoing = [(m.id, protocol.sign(m.body, key_id="k1", key=b"s" * 32)) for m in pending]
        for m in pending:
            m.state = "sent"
    for message_id, out in outgoing:
        monkeypatch.setenv("TRANSFER_INSTITUTION_CODE", target_code)
        received_message = protocol.verify(out.body, out.headers, out.routing_key, own=target_code, keys=key)
        deliver(target, received_message, roster)
        monkeypatch.setenv("TRANSFER_INSTITUTION_CODE", source_code)
        with source.transaction() as s:
            m = s.get(InterchangeMessage, message_id)
            assert m is not None
            m.state = "acked"
            s.flush()
            transfers.on_acked(s, m, protocol.AckPayload(acked_message_id=out.message_id, result="accepted"),
                               source_roster, NOW)
    monkeypatch.setenv("TRANSFER_INSTITUTION_CODE", US)
    return len(outgoing)


def test_two_institutions_complete_a_transfer_between_them(db: Database, roster: LocalRoster,
                                                           peer_side: tuple[Database, LocalRoster],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    peer_db, peer_roster = peer_side
    transfer_id = file(db, roster, student=newcomer(outflow_student_number="202201020304"))["transfer_id"]
    transfers.decide_transfer(db, AUTHORITY, roster, transfer_id, "inflow_authority", True, now=NOW)
    assert relay(db, US, peer_db, PEER, peer_roster, roster, monkeypatch) == 1  # the request
    monkeypatch.setenv("TRANSFER_INSTITUTION_CODE", PEER)
    assert transfers.get_transfer(peer_db, REGISTRAR, transfer_id, today=TODAY)["state"] == "outflow_school"
    transfers.decide_transfer(peer_db, REGISTRAR, peer_roster, transfer_id, "outflow_school", True, now=NOW)
    transfers.decide_transfer(peer_db, AUTHORITY, peer_roster, transfer_id, "outflow_authority", True, now=NOW)
    assert relay(peer_db, PEER, db, US, roster, peer_roster, monkeypatch) == 3  # two decisions and the record
    ours, theirs = row(db, transfer_id), row(peer_db, transfer_id)
    assert (ours.state, theirs.state) == ("completed", "completed")
    assert ours.record_sha256 == theirs.record_sha256 and ours.record == theirs.record  # the archived copy (T6)
    assert ours.inflow_student_number == f"{TARGET}01"
    assert peer_roster.student_identity("202201020304")["status"] == "transferred_out"  # type: ignore[index]
    arrived = roster.student_identity(f"{TARGET}01")
    assert arrived is not None and (arrived["name"], arrived["national_student_id"]) == ("王小红", "G" + NEWCOMER_ID)


# ---- the RPC port in a nameko container: roster sees transfer's system caller, not the user's -----------------


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)  # the wiring, not the database, is tested here
def test_roster_rpcs_go_as_the_transfer_system_caller(db: Database, roster: LocalRoster, roster_db: Database,
                                                      fresh_amqp_uri: str, container_factory: Any) -> None:
    from nameko.standalone.rpc import ServiceRpcProxy

    from services.common.caller import CONTEXT_KEY
    from services.roster.service import RosterService
    from services.transfer.service import TransferService

    config = {"AMQP_URI": fresh_amqp_uri, "TRANSFER_DATABASE_URL": db.url, "ROSTER_DATABASE_URL": roster_db.url}
    for service in (RosterService, TransferService):
        container_factory(service, config).start()
    leaving = request()
    deliver(db, leaving, roster)
    transfer_id = leaving.body.transfer_id
    transfers.decide_transfer(db, REGISTRAR, roster, transfer_id, "outflow_school", True)

    def rpc(caller: Caller) -> ServiceRpcProxy:
        return ServiceRpcProxy("transfer", {"AMQP_URI": fresh_amqp_uri},
                               context_data={CONTEXT_KEY: caller.to_header()})

    # roster's mark_transferred_out answers the system only: the authority's own context would be refused
    with rpc(AUTHORITY) as transfer:
        view = transfer.decide_transfer(transfer_id, "outflow_authority", True)
    assert view["state"] == "record_sent" and view["record"]["student_number"] == LEAVER["student_number"]
    assert roster_status(roster_db, LEAVER["student_number"]) == "transferred_out"
    with rpc(REGISTRAR) as transfer:
        filed = transfer.file_transfer(newcomer(), PEER, "intra_province", "监护人工作调动", TARGET,
                                       evidence(("申请.pdf", PDF)))
        assert filed["state"] == "inflow_authority"
        with pytest.raises(Invalid, match="转入班级"):  # roster.class_info over RPC: no such class
            transfer.file_transfer(newcomer(), PEER, "intra_province", "监护人工作调动", "2023019999")
        assert transfer.list_transfers(direction="inflow")["total"] == 1
        with pytest.raises(Forbidden):
            transfer.run_deadlines(as_of="2027-01-01")
    with rpc(SYSTEM) as transfer:
        assert transfer.run_deadlines(as_of="2027-01-01") == {"approved": 1, "admitted": 0, "failed": 0}
