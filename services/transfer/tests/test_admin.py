"""Transfer administration: peers and keys, the working-day calendar and its import, settings — the rules as
plain code, then the use cases against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from services.common.caller import Caller, Scope
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry
from services.common.sheets import export
from services.transfer import admin, outgoing
from services.transfer.domain import admin_rules as rules
from services.transfer.domain import workflow as wf
from services.transfer.tests.factories import caller

REGISTRAR = caller("student_affairs")
IT = caller("it_centre")
ACADEMIC = caller("academic_affairs")
COUNSELOR = caller("counselor", "classes", "2023010101")
AUTHORITY = Caller("2000001", "2000001", "authority", Scope("area", ("420100",)))
PEER = "4142010002"


# ---- plain rules ---------------------------------------------------------------------------------------


def test_a_peer_is_checked_before_it_is_saved() -> None:
    fields = rules.check_peer(" 4142010002 ", "武汉某中学", "", "420100", own="4142010001")
    assert fields == rules.PeerFields("4142010002", "武汉某中学", "42", "420100")  # province from the code
    assert rules.check_peer(PEER, "某校", "11", "", own="4142010001").authority_code is None
    for code, name, province, authority, message in [
        ("414201000", "某校", "42", "", "10位数字"),
        ("4142010001", "某校", "42", "", "本校"),
        (PEER, " ", "42", "", "单位名称"),
        (PEER, "某校", "99", "", "省份代码"),
        ("4199010002", "某校", "", "", "省份代码"),
        (PEER, "某校", "42", "4201", "主管部门代码"),
    ]:
        with pytest.raises(rules.AdminError, match=message):
            rules.check_peer(code, name, province, authority, own="4142010001")


def test_key_ids_and_secrets() -> None:
    assert rules.check_key_id(" k-2027.1 ") == "k-2027.1"
    for bad in ("", "-k", "k 1", "k" * 65):
        with pytest.raises(rules.AdminError):
            rules.check_key_id(bad)
    assert rules.parse_secret(base64.b64encode(b"x" * 32).decode()) == b"x" * 32
    with pytest.raises(rules.AdminError, match="Base64"):
        rules.parse_secret("not base64!")
    with pytest.raises(rules.AdminError, match="长度"):
        rules.parse_secret(base64.b64encode(b"short").decode())


def test_settings_are_parsed_into_what_the_workflow_reads() -> None:
    assert rules.parse_setting("deadline_days", "10") == 10
    for bad in (0, 61, "十", 2.5):
        with pytest.raises(rules.AdminError):
            rules.parse_setting("deadline_days", bad)
    assert rules.parse_setting("deadline_days_by_authority", {"420100": "10", "110108": 15}) == \
        {"110108": 15, "420100": 10}
    with pytest.raises(rules.AdminError, match="主管部门代码"):
        rules.parse_setting("deadline_days_by_authority", {"42": 10})
    windows = rules.parse_setting("term_windows", [{"start": "2027-02-20", "end": "2027-03-19"},
                                                   {"start": "2026-09-01", "end": "2026-09-30"}])
    assert windows == [{"start": "2026-09-01", "end": "2026-09-30"}, {"start": "2027-02-20", "end": "2027-03-19"}]
    assert wf.out_of_term(date(2026, 11, 2), wf.term_windows(windows))
    assert not wf.out_of_term(date(2027, 3, 1), wf.term_windows(windows))
    for bad, message in [
        ([{"start": "2026-09-30", "end": "2026-09-01"}], "早于"),
        ([{"start": "2026-09-01", "end": "2026-12-31"}], "超过"),
        ([{"start": "2026-09-01", "end": "2026-09-30"}, {"start": "2026-09-30", "end": "2026-10-15"}], "重叠"),
        ([{"start": "2026/09/01", "end": "2026-09-30"}], "yyyy-mm-dd"),
        ({"start": "2026-09-01"}, "列表"),
    ]:
        with pytest.raises(rules.AdminError, match=message):
            rules.parse_setting("term_windows", bad)
    assert rules.parse_setting("authority_code", " 420100 ") == "420100"
    with pytest.raises(rules.AdminError, match="未知"):
        rules.parse_setting("colour", 1)
    assert rules.authority_changes({"420100": 10, "110108": 15}, {"420100": 12, "110108": 15, "310000": 5}) == \
        {"420100", "310000"}


def test_calendar_cells() -> None:
    assert rules.parse_workday("是") and not rules.parse_workday(" 否 ") and rules.parse_workday(True)
    with pytest.raises(rules.AdminError, match="是.*否"):
        rules.parse_workday("也许")
    assert rules.parse_day("2027-10-01") == date(2027, 10, 1)
    with pytest.raises(rules.AdminError, match="yyyy-mm-dd"):
        rules.parse_day("2027-02-30")
    with pytest.raises(rules.AdminError, match="100"):
        rules.check_note("节" * 101)
    with pytest.raises(rules.AdminError):
        rules.check_year(1999)


# ---- use cases -----------------------------------------------------------------------------------------


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("transfer")


def audit_rows(db: Database, action: str) -> list[AuditEntry]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_peers_are_kept_by_the_it_centre_and_student_affairs(db: Database) -> None:
    saved = admin.save_peer(db, IT, PEER, "武汉某中学", "", "420100")
    assert (saved["province"], saved["active"], saved["keys"]) == ("42", True, [])
    admin.save_peer(db, REGISTRAR, PEER, "武汉某高级中学", "42", "", active=False)
    [peer] = admin.list_peers(db, ACADEMIC)
    assert (peer["name"], peer["authority_code"], peer["active"]) == ("武汉某高级中学", None, False)
    with pytest.raises(Forbidden):
        admin.save_peer(db, ACADEMIC, "4142010003", "某校", "42")
    with pytest.raises(Forbidden):
        admin.list_peers(db, COUNSELOR)
    with pytest.raises(Invalid, match="本校"):
        admin.save_peer(db, IT, outgoing.own_code(), "本校", "42")
    [first, second] = audit_rows(db, "peer.save")
    assert first.before is None and '"active": false' in (second.after or "")


def test_keys_rotate_without_downtime_and_secrets_are_shown_once(db: Database) -> None:
    admin.save_peer(db, IT, PEER, "武汉某中学", "42")
    old = admin.add_peer_key(db, IT, PEER, "k1")
    secret = base64.b64decode(old["secret"])
    assert old["generated"] and len(secret) == 32 and old["notice"]
    with db.reading() as s:
        assert outgoing.signing_key(s, PEER) == ("k1", secret)
    given = base64.b64encode(b"p" * 32).decode()
    new = admin.add_peer_key(db, REGISTRAR, PEER, "k2", given)
    assert new["secret"] is None and not new["generated"]
    with db.reading() as s:  # during the rotation the newest signs and both verify
        assert outgoing.signing_key(s, PEER) == ("k2", b"p" * 32)
        assert set(outgoing.accepted_keys(s)) == {(PEER, "k1"), (PEER, "k2")}
    with pytest.raises(Conflict):
        admin.add_peer_key(db, IT, PEER, "k1")
    with pytest.raises(NotFound):
        admin.add_peer_key(db, IT, "4142010009", "k1")
    with pytest.raises(Forbidden):
        admin.add_peer_key(db, ACADEMIC, PEER, "k3")
    retired = admin.retire_peer_key(db, IT, PEER, "k1")
    assert retired["changed"] and retired["state"] == "retired" and retired["warning"] is None
    with db.reading() as s:
        assert set(outgoing.accepted_keys(s)) == {(PEER, "k2")}
    last = admin.retire_peer_key(db, IT, PEER, "k2")
    assert "没有可用的密钥" in last["warning"]
    assert admin.retire_peer_key(db, IT, PEER, "k2")["changed"] is False
    with pytest.raises(NotFound):
        admin.retire_peer_key(db, IT, PEER, "k9")
    with db.reading() as s, pytest.raises(Conflict):
        outgoing.signing_key(s, PEER)
    [peer] = admin.list_peers(db, IT)
    assert [(k["key_id"], k["state"]) for k in peer["keys"]] == [("k1", "retired"), ("k2", "retired")]
    assert all("secret" not in k for k in peer["keys"]) and peer["active_keys"] == 0
    logged = " ".join(f"{e.before} {e.after}" for e in audit_rows(db, "peer.key_add"))
    assert old["secret"] not in logged and given not in logged and '"key_id": "k2"' in logged


def test_calendar_overrides_change_the_working_days(db: Database) -> None:
    year = admin.calendar_days(db, ACADEMIC, 2027)
    # chinese-calendar does not know 2027 yet: Monday to Friday until the notice is entered
    assert (year["known"], year["overrides"], year["workdays"]) == (False, [], 261)
    admin.save_calendar_day(db, REGISTRAR, "2027-10-01", "否", "国庆节")
    saved = admin.save_calendar_day(db, REGISTRAR, "2027-09-26", True, "国庆节调休上班")
    assert saved["outcome"] == "created"
    assert admin.save_calendar_day(db, REGISTRAR, "2027-09-26", "是", "国庆节调休上班")["outcome"] == "unchanged"
    year = admin.calendar_days(db, ACADEMIC, 2027)
    assert year["known"] and year["workdays"] == 261
    assert [(d["day"], d["is_workday"], d["note"]) for d in year["overrides"]] == [
        ("2027-09-26", True, "国庆节调休上班"), ("2027-10-01", False, "国庆节")]
    with db.reading() as s:
        calendar = admin.calendar_of(s)
    assert calendar.add_workdays(date(2027, 9, 30), 1) == date(2027, 10, 4)
    admin.delete_calendar_day(db, REGISTRAR, "2027-09-26")
    assert admin.calendar_days(db, ACADEMIC, 2027)["workdays"] == 260
    assert admin.calendar_days(db, ACADEMIC, 2025)["known"] is True  # the library's own year
    with pytest.raises(NotFound):
        admin.delete_calendar_day(db, REGISTRAR, "2027-09-26")
    with pytest.raises(Invalid, match="是.*否"):
        admin.save_calendar_day(db, REGISTRAR, "2027-10-02", "假", "")
    with pytest.raises(Forbidden):
        admin.save_calendar_day(db, ACADEMIC, "2027-10-02", False, "")
    assert [e.action for e in audit_rows(db, "calendar.save")] == ["calendar.save"] * 2
    assert len(audit_rows(db, "calendar.delete")) == 1


def sheet(rows: list[dict[str, Any]]) -> str:
    return base64.b64encode(export(admin.CALENDAR_COLUMNS, rows, "工作日历")).decode()


def test_the_yearly_notice_is_imported_all_or_nothing(db: Database) -> None:
    template = load_workbook(io.BytesIO(base64.b64decode(admin.calendar_template(db, REGISTRAR)["content"])))
    assert [c.value for c in template.worksheets[0][1]] == ["日期", "是否工作日", "说明"]
    bad = admin.import_calendar(db, REGISTRAR, sheet([
        {"day": "2027-10-01", "is_workday": "否", "note": "国庆节"},
        {"day": "2027-13-01", "is_workday": "否", "note": ""},
        {"day": "2027-10-02", "is_workday": "放假", "note": ""},
        {"day": "2027-10-01", "is_workday": "否", "note": "重复"},
        {"day": "", "is_workday": "", "note": "空"},
    ]))
    assert not bad["ok"] and bad["annotated"]
    assert [(e["row"], e["column"], e["header"]) for e in bad["errors"]] == [
        (3, "A", "日期"), (4, "B", "是否工作日"), (5, "A", "日期"), (6, "A", "日期"), (6, "B", "是否工作日")]
    assert "第 2 行" in bad["errors"][2]["message"] and bad["errors"][3]["message"] == "日期不能为空"
    assert admin.calendar_days(db, REGISTRAR, 2027)["overrides"] == []
    notice = [{"day": "2027-10-01", "is_workday": "否", "note": "国庆节"},
              {"day": "2027-10-09", "is_workday": "是", "note": "调休上班"}]
    assert admin.import_calendar(db, REGISTRAR, sheet(notice))["created"] == 2
    again = admin.import_calendar(db, REGISTRAR, sheet([*notice[:1], {**notice[1], "note": "国庆节调休上班"}]))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 1)
    assert len(audit_rows(db, "calendar.import")) == 2
    with pytest.raises(Invalid):
        admin.import_calendar(db, REGISTRAR, base64.b64encode(b"not a workbook").decode())
    with pytest.raises(Forbidden):
        admin.import_calendar(db, AUTHORITY, sheet(notice))


def test_settings_and_the_authoritys_own_deadline(db: Database) -> None:
    listed = {s["key"]: s for s in admin.transfer_settings(db, ACADEMIC)}
    assert listed["deadline_days"]["value"] == 20 and listed["term_windows"]["value"] == []
    assert not listed["deadline_days"]["editable"]
    admin.save_transfer_setting(db, REGISTRAR, "deadline_days", "15")
    admin.save_transfer_setting(db, REGISTRAR, "deadline_days_by_authority", {"110108": 12})
    with pytest.raises(Invalid, match="1到60"):
        admin.save_transfer_setting(db, REGISTRAR, "deadline_days", 0)
    # an authority sets its own figure, leaves the others' alone
    admin.save_transfer_setting(db, AUTHORITY, "deadline_days_by_authority", {"110108": 12, "420100": 10})
    with pytest.raises(Forbidden, match="110108"):
        admin.save_transfer_setting(db, AUTHORITY, "deadline_days_by_authority", {"110108": 5, "420100": 10})
    with pytest.raises(Forbidden):
        admin.save_transfer_setting(db, AUTHORITY, "deadline_days", 10)
    with pytest.raises(Forbidden):
        admin.save_transfer_setting(db, ACADEMIC, "deadline_days", 10)
    mine = {s["key"]: s for s in admin.transfer_settings(db, AUTHORITY)}
    assert mine["deadline_days_by_authority"]["editable"] and not mine["term_windows"]["editable"]
    with db.reading() as s:
        values = admin.setting_values(s)
    assert values["deadline_days_by_authority"] == {"110108": 12, "420100": 10}
    # what the workflow makes of them
    assert wf.deadline_days(values["deadline_days"], values["deadline_days_by_authority"], "420100") == 10
    assert wf.deadline_days(values["deadline_days"], values["deadline_days_by_authority"], "310000") == 15
    assert len(audit_rows(db, "transfer_setting.save")) == 3
