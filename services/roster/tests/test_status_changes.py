"""学籍异动 (R8, R18): every allowed and forbidden transition and who may apply it, from a table
written out here by hand; then single changes with evidence, K-12 approval and revocation
against real databases."""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from services.common.audit import verify_chain
from services.common.caller import ROLES, SYSTEM, Caller, Scope
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid
from services.common.models import OutboxMessage
from services.roster import importing, settings, status_changes
from services.roster.adapters.orm import StatusAttachment, StatusChange, Student
from services.roster.domain import status as st
from services.roster.domain import transitions as tr
from services.roster.tests.test_import import IT, REGISTRAR, db, person, workbook  # noqa: F401 - fixture

# The rule as registrars read it: kind → (statuses it starts from, roles that apply it besides the system).
ALL_OPEN = "在读 休学 参军 借读 未报到 疑似辍学 辍学"
EXPECTED: dict[str, tuple[str, str]] = {
    "suspend": ("在读 借读", "academic_affairs"),
    "resume": ("休学 参军", "academic_affairs"),
    "withdraw": ("在读 休学 借读 参军 未报到 疑似辍学 辍学", "academic_affairs"),
    "expel": ("在读 休学 借读 疑似辍学", "academic_affairs"),
    "death": (ALL_OPEN, "academic_affairs"),
    "military": ("在读 休学", "academic_affairs"),
    "transfer_out": ("在读 休学", "academic_affairs"),
    "visiting": ("在读", "academic_affairs"),
    "end_visiting": ("借读", "academic_affairs"),
    "graduate": ("在读", "counselor deputy_secretary academic_affairs"),
    "complete": ("在读", "counselor deputy_secretary academic_affairs"),
    "attendance": ("在读", "counselor deputy_secretary academic_affairs"),
    "not_reported": ("在读", "academic_affairs"),
    "report_late": ("未报到", "academic_affairs counselor"),
    "suspected_dropout": ("在读", "academic_affairs counselor"),
    "dropout": ("疑似辍学", "academic_affairs"),
    "return": ("疑似辍学 辍学", "academic_affairs counselor"),
    "go_abroad": ("在读 休学", "academic_affairs"),
}
STATUS_BY_LABEL = {label: code for code, label in st.LABELS.items()}


def test_the_table_covers_every_kind() -> None:
    assert set(EXPECTED) == set(tr.KINDS)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_transition_and_role(kind: str) -> None:
    sources, roles = EXPECTED[kind]
    allowed_from = {STATUS_BY_LABEL[label] for label in sources.split()}
    allowed_roles = {*roles.split(), SYSTEM}
    k = tr.kind_of(kind)
    for status in st.LABELS:
        for role in (*ROLES, SYSTEM):
            ok = status in allowed_from and role in allowed_roles
            try:
                tr.check(k, status, role, reason="原因", evidence="文号 1", attachments=0)
            except tr.TransitionError as exc:
                assert not ok, f"{kind} from {status} by {role} refused: {exc.message}"
            else:
                assert ok, f"{kind} from {status} by {role} should be refused"


def test_leaving_kinds_close_the_record_and_suspension_keeps_it() -> None:
    left = {k.code for k in tr.KINDS.values() if st.has_left(k.to_status)}
    assert left == {"withdraw", "expel", "death", "transfer_out", "graduate", "complete", "attendance", "go_abroad"}
    assert not st.has_left(tr.kind_of("suspend").to_status) and not st.has_left(tr.kind_of("military").to_status)
    assert not st.on_campus(st.SUSPENDED) and st.on_campus(st.ENROLLED)


def test_reason_and_evidence_are_required_of_people_not_of_jobs() -> None:
    withdraw = tr.kind_of("withdraw")
    with pytest.raises(tr.TransitionError, match="原因"):
        tr.check(withdraw, st.ENROLLED, "academic_affairs", reason=" ", evidence="x", attachments=0)
    with pytest.raises(tr.TransitionError, match="证明材料"):
        tr.check(withdraw, st.ENROLLED, "academic_affairs", reason="r", evidence="", attachments=0)
    tr.check(withdraw, st.ENROLLED, "academic_affairs", reason="r", evidence="", attachments=1)
    tr.check(tr.kind_of("not_reported"), st.ENROLLED, SYSTEM, reason="迎新结束", evidence="", attachments=0)
    assert tr.kind_by_label("休学") is tr.kind_of("suspend") and tr.kind_by_label("suspend") is tr.kind_of("suspend")
    assert tr.kind_by_label("请假") is None


def test_military_service_keeps_the_record_two_years_after_discharge() -> None:
    today = date(2027, 3, 1)
    assert tr.military_return_refusal(date(2025, 3, 1), today) is None
    assert "超过2年" in (tr.military_return_refusal(date(2025, 2, 28), today) or "")
    assert "退役日期" in (tr.military_return_refusal(None, today) or "")
    assert tr.military_return_refusal(date(2024, 2, 29), date(2026, 2, 28)) is None


def test_revocation_rules() -> None:
    withdraw = tr.kind_of("withdraw")
    assert tr.revoker_refusal(withdraw, "academic_affairs") is None
    assert "撤销" in (tr.revoker_refusal(withdraw, "counselor") or "")
    assert tr.revoker_refusal(None, SYSTEM) is None and tr.revoker_refusal(None, "academic_affairs")
    assert tr.revocation_refusal(True, False, False) is None
    assert "最近一次" in (tr.revocation_refusal(False, False, False) or "")
    assert "已撤销" in (tr.revocation_refusal(True, True, False) or "")
    assert "本身" in (tr.revocation_refusal(True, False, True) or "")


# --- use cases against SQLite and PostgreSQL -------------------------------------------------------------

ACADEMIC = Caller("1000007", "1000007", "academic_affairs", Scope("institution"))
COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
AUTHORITY = Caller("2000001", "2000001", "authority", Scope("area", ("110108",)))
A, B, C = "202301010101", "202301010102", "202301010201"
PDF = {"filename": "休学申请.pdf", "data": base64.b64encode(b"%PDF-1.4 test evidence").decode()}


@pytest.fixture
def students(db: Database) -> Database:  # noqa: F811
    result = importing.import_students(db, IT, workbook([person(1), person(2), person(1, klass="2023010102")]))
    assert result["ok"]
    return db


def status(database: Database, number: str) -> str:
    with database.reading() as s:
        student = s.get(Student, number)
        assert student is not None
        return student.status


def status_events(database: Database) -> list[dict[str, object]]:
    with database.reading() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "student.status_changed")
                         .order_by(OutboxMessage.id))
        return [json.loads(r.body)["payload"] for r in rows]


def test_a_change_with_evidence_is_applied_published_and_audited(students: Database) -> None:
    result = status_changes.apply_status_change(students, ACADEMIC, A, "suspend", "2026-11-20", "因病休学",
                                                attachments=[PDF], details={"until": "2027-11-19"})
    assert result["applied"] and result["status_label"] == "休学" and status(students, A) == "suspended"
    [event] = status_events(students)
    assert (event["old_status"], event["new_status"], event["left"]) == ("enrolled", "suspended", False)
    [entry] = status_changes.timeline(students, ACADEMIC, A)
    assert entry["kind_label"] == "休学" and entry["details"] == {"until": "2027-11-19"}
    assert [f["filename"] for f in entry["attachments"]] == ["休学申请.pdf"]
    file = status_changes.attachment(students, ACADEMIC, entry["attachments"][0]["id"])
    assert base64.b64decode(file["data"]).startswith(b"%PDF") and file["content_type"] == "application/pdf"
    with students.reading() as s:
        assert verify_chain(s).ok


def test_bad_input_changes_nothing(students: Database) -> None:
    exe = {"filename": "a.pdf", "data": base64.b64encode(b"MZ\x90\x00").decode()}
    with pytest.raises(Invalid, match="PDF、JPEG 或 PNG"):
        status_changes.apply_status_change(students, ACADEMIC, A, "withdraw", "2026-11-20", "本人申请",
                                           attachments=[exe])
    with pytest.raises(Invalid, match="证明材料"):
        status_changes.apply_status_change(students, ACADEMIC, A, "withdraw", "2026-11-20", "本人申请")
    with pytest.raises(Invalid, match="日期"):
        status_changes.apply_status_change(students, ACADEMIC, A, "withdraw", "20.11.2026", "r", "文号")
    with pytest.raises(Invalid, match="不能办理复学"):
        status_changes.apply_status_change(students, ACADEMIC, A, "resume", "2026-11-20", "r", "文号")
    with pytest.raises(Invalid, match="不存在"):
        status_changes.apply_status_change(students, ACADEMIC, A, "vacation", "2026-11-20", "r", "文号")
    assert status(students, A) == "enrolled" and status_events(students) == []
    with students.reading() as s:
        assert s.scalar(select(StatusAttachment.id)) is None


def test_who_may_apply_and_where(students: Database) -> None:
    with pytest.raises(Forbidden):  # counselors do not withdraw students
        status_changes.apply_status_change(students, COUNSELOR, A, "withdraw", "2026-11-20", "r", "文号")
    with pytest.raises(Forbidden):  # irregular graduation, but outside the counselor's classes
        status_changes.apply_status_change(students, COUNSELOR, C, "graduate", "2026-11-20", "提前毕业", "文号")
    result = status_changes.apply_status_change(students, COUNSELOR, A, "graduate", "2026-11-20", "提前修满学分",
                                                "教务〔2026〕12号")
    assert result["applied"] and status(students, A) == "graduated"
    assert status_events(students)[-1]["left"] is True
    student = Caller(A, A, "student", Scope("self", (A,)))
    with pytest.raises(Forbidden):
        status_changes.apply_status_change(students, student, A, "suspend", "2026-11-20", "r", "文号")


def test_resuming_after_military_service_needs_the_discharge_date(students: Database) -> None:
    status_changes.apply_status_change(students, ACADEMIC, A, "military", "2024-09-01", "应征入伍", "入伍通知书")
    with pytest.raises(Invalid, match="退役日期"):
        status_changes.apply_status_change(students, ACADEMIC, A, "resume", "2026-11-20", "退役复学", "退役证")
    old = (date.today() - timedelta(days=3 * 365)).isoformat()
    with pytest.raises(Invalid, match="超过2年"):
        status_changes.apply_status_change(students, ACADEMIC, A, "resume", "2026-11-20", "退役复学", "退役证",
                                           details={"discharged_on": old})
    recent = (date.today() - timedelta(days=30)).isoformat()
    status_changes.apply_status_change(students, ACADEMIC, A, "resume", "2026-11-20", "退役复学", "退役证",
                                       details={"discharged_on": recent})
    assert status(students, A) == "enrolled"


def test_revocation_restores_what_the_change_replaced(students: Database) -> None:
    first = status_changes.apply_status_change(students, ACADEMIC, A, "suspend", "2026-09-01", "因病", "诊断书")
    second = status_changes.apply_status_change(students, ACADEMIC, A, "withdraw", "2026-11-01", "本人申请", "申请书")
    with pytest.raises(Forbidden):
        status_changes.revoke_status_change(students, COUNSELOR, second["change_id"], "误操作")
    with pytest.raises(Conflict, match="最近一次"):
        status_changes.revoke_status_change(students, ACADEMIC, first["change_id"], "误操作")
    with pytest.raises(Invalid, match="原因"):
        status_changes.revoke_status_change(students, ACADEMIC, second["change_id"], " ")
    undo = status_changes.revoke_status_change(students, ACADEMIC, second["change_id"], "误操作")
    assert undo["status"] == "suspended" and status(students, A) == "suspended"
    event = status_events(students)[-1]
    assert (event["new_status"], event["left"], event["revokes_change_id"]) == ("suspended", False,
                                                                               second["change_id"])
    with pytest.raises(Conflict):
        status_changes.revoke_status_change(students, ACADEMIC, second["change_id"], "再次")
    with pytest.raises(Conflict, match="本身"):
        status_changes.revoke_status_change(students, ACADEMIC, undo["change_id"], "再次")
    timeline = status_changes.timeline(students, ACADEMIC, A)
    assert [e["kind_label"] for e in timeline] == ["休学", "退学", "撤销"]
    assert timeline[1]["revoked_by_change_id"] == undo["change_id"]


def test_k12_changes_wait_for_the_authority(students: Database) -> None:
    settings.save_setting(students, REGISTRAR, "authority_approval_kinds", ["withdraw"])
    pending = status_changes.apply_status_change(students, ACADEMIC, A, "withdraw", "2026-11-20", "出国定居",
                                                 "户籍注销证明", attachments=[PDF])
    assert pending["applied"] is False and status(students, A) == "enrolled" and status_events(students) == []
    with pytest.raises(Conflict, match="待审批"):
        status_changes.apply_status_change(students, ACADEMIC, A, "withdraw", "2026-11-20", "再报", "文号")
    [listed] = status_changes.list_applications(students, AUTHORITY)
    assert listed["kind_label"] == "退学" and listed["requested_by"] == ACADEMIC.username
    with pytest.raises(Forbidden):
        status_changes.decide_application(students, ACADEMIC, listed["id"], True)
    with pytest.raises(Invalid, match="理由"):
        status_changes.decide_application(students, AUTHORITY, listed["id"], False)
    decided = status_changes.decide_application(students, AUTHORITY, listed["id"], True, "同意")
    assert status(students, A) == "withdrawn" and status_events(students)[-1]["new_status"] == "withdrawn"
    [entry] = status_changes.timeline(students, ACADEMIC, A)
    assert entry["id"] == decided["change_id"] and entry["attachments"]  # the application's evidence moved along
    with pytest.raises(Conflict):
        status_changes.decide_application(students, AUTHORITY, listed["id"], True)
    # kinds not configured still apply at once
    assert status_changes.apply_status_change(students, ACADEMIC, B, "suspend", "2026-11-20", "因病", "诊断")["applied"]


def test_settings_are_checked_and_audited(students: Database) -> None:
    with pytest.raises(Invalid, match="未知的异动类型"):
        settings.save_setting(students, REGISTRAR, "authority_approval_kinds", ["holiday"])
    with pytest.raises(Invalid):
        settings.save_setting(students, REGISTRAR, "promotion_day", "02-30")
    with pytest.raises(Forbidden):
        settings.save_setting(students, ACADEMIC, "suspect_days", 4)
    settings.save_setting(students, REGISTRAR, "suspect_days", "4")
    listed = settings.read_settings(students, ACADEMIC)
    values = {s["key"]: s["value"] for s in listed}
    [kinds] = [s for s in listed if s["key"] == "authority_approval_kinds"]
    assert {"code": "withdraw", "label": "退学"} in kinds["choices"]
    assert values["suspect_days"] == 4 and values["dropout_days"] == 7 and values["welcome_end"] is None


def test_every_change_is_kept_with_its_kind(students: Database) -> None:
    status_changes.apply_status_change(students, ACADEMIC, A, "death", "2026-11-20", "病故", "死亡证明")
    with students.reading() as s:
        [change] = s.scalars(select(StatusChange)).all()
        assert (change.kind, change.actor_id, change.evidence) == ("death", ACADEMIC.username, "死亡证明")
