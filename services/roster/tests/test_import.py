"""Excel import/export, duplicates and merge, code tables and the audit chain against real databases."""

from __future__ import annotations

import base64
import io
import json
from datetime import date
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, text

from services.common.audit import verify_chain
from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.common.models import AuditChainLink, AuditEntry, OutboxMessage
from services.common.sheets import ERROR_SHEET, column_letter, export
from services.common.testing import drop_audit_guard
from services.roster import codes, handlers, importing, problems, statistics
from services.roster.adapters.orm import ProblemRecord, StatusChange, Student
from services.roster.domain.codes import CodeBook
from services.roster.tests.factories import cn_name, national_id

SYSTEM = system_caller("test")
REGISTRAR = Caller("1000001", "1000001", "student_affairs", Scope("institution"))
IT = Caller("1000002", "1000002", "it_centre", Scope("institution"))
COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
BORN = date(2005, 3, 14)
@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("roster")
    handlers.upsert_org_units(database, SYSTEM, [
        {"code": "01", "name": "计算机学院", "kind": "college"},
        {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
        {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
        {"code": "2023010102", "name": "计科2302", "kind": "class", "parent_code": "0101"},
    ])
    return database


def person(seat: int, klass: str = "2023010101", **changes: Any) -> dict[str, Any]:
    gender = "男" if seat % 2 else "女"
    row = {
        "student_number": f"{klass}{seat:02d}", "exam_number": f"2311010112{seat:04d}", "name": cn_name(seat),
        "gender": gender, "birth_date": BORN, "id_type": "居民身份证",
        "national_id": national_id(BORN, "1" if seat % 2 else "2", seq=seat + int(klass[-2:]) * 50),
        "ethnicity": "汉族", "political_status": "中国共产主义青年团团员", "native_place": "110101",
        "entry_month": "2023-09", "class_code": klass, "level": "本科", "program_years": "4",
        "phone": "13800138000", "address": "北京市海淀区", "guardian1_name": "家长", "guardian1_relation": "父亲",
        "guardian1_id_number": national_id(date(1975, 1, 1), "1", seq=seat),
    }
    row.update(changes)
    return row


def workbook(rows: list[dict[str, Any]]) -> str:
    cols = importing.columns(CodeBook.standard())
    return base64.b64encode(export(cols, rows, "学生信息")).decode()


def count(db: Database, model: Any, *where: Any) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def registered_events(db: Database) -> int:
    return count(db, OutboxMessage, OutboxMessage.event_type == "student.registered")


def test_template_has_dropdowns_from_the_code_tables(db: Database) -> None:
    result = importing.import_template(db, IT)
    wb = load_workbook(io.BytesIO(base64.b64decode(result["content"])))
    ws = wb.worksheets[0]
    assert ws["A1"].value == "学号" and ws.freeze_panes == "A2"
    assert len(ws.data_validations.dataValidation) >= 10
    assert "汉族" in [c.value for c in wb["字典"]["C"]] or any(
        "汉族" in [c.value for c in col] for col in wb["字典"].iter_cols())
    with pytest.raises(Forbidden):
        importing.import_template(db, COUNSELOR)


def test_a_file_with_errors_changes_nothing_and_comes_back_annotated(db: Database) -> None:
    content = workbook([person(1), person(2, gender="X"), person(3, national_id="110101200503140000")])
    result = importing.import_students(db, IT, content)
    assert not result["ok"] and not result["written"] and result["error_rows"] == 2
    assert count(db, Student) == 0 and registered_events(db) == 0
    assert {(e["row"], e["header"]) for e in result["errors"]} == {(3, "性别"), (4, "身份证件号")}
    wb = load_workbook(io.BytesIO(base64.b64decode(result["annotated"])))
    ws = wb.worksheets[0]
    gender_col = column_letter(importing.columns(CodeBook.standard()), "gender")
    assert "不在代码表中" in ws[f"{gender_col}3"].comment.text
    assert ws[f"{gender_col}3"].fill.fgColor.rgb.endswith("FFC7CE")
    listed = [[c.value for c in r] for r in wb[ERROR_SHEET].iter_rows(min_row=2)]
    assert [r[0] for r in listed] == [3, 4] and listed[0][2] == "性别"


def test_valid_rows_only_imports_the_rest_and_publishes(db: Database) -> None:
    content = workbook([person(1), person(2, gender="X"), person(3)])
    result = importing.import_students(db, IT, content, valid_only=True)
    assert result["written"] and result["imported"] == 2 and result["error_rows"] == 1
    assert result["annotated"]  # the operator still gets the bad row back
    assert registered_events(db) == 2
    with db.reading() as s:
        saved = s.get(Student, "202301010101")
        assert saved is not None and saved.ethnicity == "01" and saved.political_status == "03"
        assert saved.major_code == "0101" and saved.college_code == "01" and saved.status == "enrolled"
        assert json.loads(saved.guardians or "[]")[0]["relation"] == "1"
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "student.register")) == 2
        assert verify_chain(s).ok


def test_importing_the_same_file_again_changes_nothing(db: Database) -> None:
    content = workbook([person(i) for i in range(1, 6)])
    first = importing.import_students(db, IT, content)
    assert first["ok"] and first["imported"] == 5
    audits, events = count(db, AuditEntry), registered_events(db)
    again = importing.import_students(db, IT, content)
    assert again["ok"] and again["imported"] == 0 and again["unchanged"] == 5
    assert count(db, AuditEntry) == audits and registered_events(db) == events


def test_duplicates_inside_the_file_and_against_the_register(db: Database) -> None:
    importing.import_students(db, IT, workbook([person(1)]))
    twin = person(2, national_id=person(3)["national_id"], gender="男")
    content = workbook([twin, person(3, gender="男"), person(4, national_id=person(1)["national_id"], gender="男"),
                        person(5)])
    result = importing.import_students(db, IT, content)
    messages = {(e["row"], e["header"]): e["message"] for e in result["errors"]}
    assert "与第3行重复" in messages[(2, "身份证件号")] and "与第2行重复" in messages[(3, "身份证件号")]
    assert "202301010101" in messages[(4, "身份证件号")]
    assert not any(row == 5 for row, _ in messages)


def test_changed_rows_need_update_existing(db: Database) -> None:
    importing.import_students(db, IT, workbook([person(1)]))
    changed = workbook([person(1, address="北京市朝阳区")])
    refused = importing.import_students(db, IT, changed)
    assert not refused["written"] and "更新已经存在的数据" in refused["errors"][0]["message"]
    updated = importing.import_students(db, IT, changed, update_existing=True)
    assert updated["updated"] == 1 and updated["written"]
    with db.reading() as s:
        assert s.get(Student, "202301010101").address == "北京市朝阳区"  # type: ignore[union-attr]
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "student.update")).one()
        assert "海淀" in (entry.before or "") and "朝阳" in (entry.after or "")
    assert registered_events(db) == 2  # the first registration and the refreshed copy


def test_bad_files(db: Database) -> None:
    with pytest.raises(Invalid, match="不是有效的 Excel"):
        importing.import_students(db, IT, base64.b64encode(b"not a workbook").decode())
    with pytest.raises(Invalid):
        importing.import_students(db, IT, "%%%")
    with pytest.raises(Forbidden):
        importing.import_students(db, COUNSELOR, workbook([person(1)]))


def test_export_round_trip_masking_scope_and_escaping(db: Database) -> None:
    rows = [person(1, address="=HYPERLINK(\"x\")"), person(2), person(1, klass="2023010102")]
    assert importing.import_students(db, IT, workbook(rows))["imported"] == 3

    full = importing.export_students(db, REGISTRAR)
    assert full["count"] == 3
    data = base64.b64decode(full["content"])
    ws = load_workbook(io.BytesIO(data)).worksheets[0]
    headers = [c.value for c in ws[1]]
    assert headers[-2:] == ["专业名称", "学籍状态"]
    address = ws.cell(row=2, column=headers.index("现住址") + 1)
    assert address.value == "'=HYPERLINK(\"x\")" and address.data_type == "s"
    assert ws.cell(row=2, column=headers.index("民族") + 1).value == "汉族"  # labels, not codes
    # The export imports again as "unchanged": same layout, same values.
    again = importing.import_students(db, IT, base64.b64encode(data).decode())
    assert again["ok"] and again["unchanged"] == 3 and again["imported"] == 0

    mine = importing.export_students(db, COUNSELOR)
    assert mine["count"] == 2
    ws = load_workbook(io.BytesIO(base64.b64decode(mine["content"]))).worksheets[0]
    id_col = headers.index("身份证件号") + 1
    assert "*" in ws.cell(row=2, column=id_col).value
    assert "*" in ws.cell(row=2, column=headers.index("监护人1身份证件号") + 1).value
    with db.reading() as s:
        exports = s.scalars(select(AuditEntry).where(AuditEntry.action == "student.export")).all()
        assert [json.loads(e.after or "{}")["full_id"] for e in exports] == [True, False]
    with pytest.raises(Forbidden):
        importing.export_students(db, Caller("s", "202301010101", "student", Scope("self", ("202301010101",))))


def test_suspected_duplicates_listed_and_merged(db: Database) -> None:
    no_id = {"id_type": "其他", "national_id": None}
    importing.import_students(db, IT, workbook([person(1, **no_id)]))
    with db.transaction() as s:
        s.add(StatusChange(student_number="202301010101", old_status="enrolled", new_status="suspended",
                           reason="病休", effective_at=handlers.datetime.now(handlers.UTC), actor_kind="user",
                           actor_id="x", created_at=handlers.datetime.now(handlers.UTC)))
    result = importing.import_students(db, IT, workbook([person(1, klass="2023010102", name=cn_name(1), gender="男",
                                                               **no_id)]))
    assert result["imported"] == 1 and result["suspected_duplicates"] == 1
    listed = problems.list_problems(db, REGISTRAR)
    assert [s["student_number"] for s in listed[0]["students"]] == ["202301010101", "202301010201"]
    assert "无身份证件号" in listed[0]["evidence"]
    assert problems.scan(db, REGISTRAR)["found"] == 0  # already listed
    with pytest.raises(Forbidden):
        problems.merge(db, COUNSELOR, listed[0]["id"], "202301010101", "202301010201", "核对高考报名库")
    with pytest.raises(Invalid):
        problems.merge(db, REGISTRAR, listed[0]["id"], "202301010201", "202301010101", " ")
    merged = problems.merge(db, REGISTRAR, listed[0]["id"], "202301010201", "202301010101", "核对高考报名库")
    assert merged["moved_changes"] == 1
    with db.reading() as s:
        assert s.get(Student, "202301010101") is None
        assert s.scalars(select(StatusChange.student_number)).all() == ["202301010201"]
        assert s.scalars(select(ProblemRecord.state)).all() == ["merged"]
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "student.merge")).one()
        assert json.loads(entry.before or "{}")["name"] == cn_name(1)
        assert verify_chain(s).ok
    assert count(db, OutboxMessage, OutboxMessage.event_type == "student.merged") == 1
    assert problems.list_problems(db, REGISTRAR) == []


def test_scan_finds_duplicates_registered_by_other_paths(db: Database) -> None:
    from services.roster.tests.factories import student

    # registration marks a record without an ID number like someone registered; not the other way round
    importing.register_students(db, SYSTEM, [student(1, with_id=False), {**student(2), "name": cn_name(1)}])
    assert problems.scan(db, REGISTRAR)["found"] == 1
    problem = problems.list_problems(db, REGISTRAR)[0]
    problems.dismiss(db, REGISTRAR, problem["id"], "双胞胎，不是重复")
    assert problems.scan(db, REGISTRAR)["found"] == 0  # a decided group stays decided
    assert problems.list_problems(db, REGISTRAR, "dismissed")[0]["note"] == "双胞胎，不是重复"


def test_code_table_edits(db: Database) -> None:
    with pytest.raises(Forbidden):
        codes.save_code(db, COUNSELOR, "health", "7", "其他")
    with pytest.raises(Invalid):
        codes.save_code(db, REGISTRAR, "nope", "7", "其他")
    codes.save_code(db, REGISTRAR, "health", "7", "其他")
    codes.save_code(db, REGISTRAR, "ethnicity", "98", "外国血统中国籍人士", active=False)
    tables = codes.code_tables(db, COUNSELOR)
    assert {"code": "7", "label": "其他", "active": True} in tables["health"]["codes"]
    assert "division" not in tables
    result = importing.import_students(db, IT, workbook([person(1, health="其他"), person(2, ethnicity="98")]))
    assert [(e["row"], e["header"]) for e in result["errors"]] == [(3, "民族")]
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "code.save")) == 2


def test_audit_chain_detects_an_edited_or_removed_entry(db: Database) -> None:
    importing.import_students(db, IT, workbook([person(i) for i in range(1, 4)]))
    assert codes.verify_audit(db, REGISTRAR)["ok"]
    with db.reading() as s:
        chained = s.scalars(select(AuditChainLink.audit_id).order_by(AuditChainLink.seq)).all()
    victim = chained[3]
    with db.transaction() as s:
        drop_audit_guard(s)
        s.execute(text("UPDATE audit_log SET after = :a WHERE id = :i"), {"a": '{"name": "改过"}', "i": victim})
    report = codes.verify_audit(db, REGISTRAR)
    assert not report["ok"] and report["audit_id"] == victim and "已被修改" in report["message"]
    with db.transaction() as s:
        s.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": victim})
    assert "已被删除" in codes.verify_audit(db, REGISTRAR)["message"]
    with pytest.raises(Forbidden):
        codes.verify_audit(db, COUNSELOR)


def test_audit_chain_detects_a_removed_last_link(db: Database) -> None:
    importing.import_students(db, IT, workbook([person(1)]))
    with db.transaction() as s:
        last = s.scalar(select(func.max(AuditChainLink.seq)))
        s.execute(text("DELETE FROM audit_chain WHERE seq = :q"), {"q": last})
    report = codes.verify_audit(db, REGISTRAR)
    assert not report["ok"] and "末尾" in report["message"]


def test_statistics_leave_out_not_reported_and_leavers(db: Database) -> None:
    rows = [person(1), person(2, ethnicity="回族", household_division="310101"), person(3),
            person(1, klass="2023010102"), person(2, klass="2023010102")]
    importing.import_students(db, IT, workbook(rows))
    with db.transaction() as s:
        s.get(Student, "202301010103").status = "graduated"  # type: ignore[union-attr]
        s.get(Student, "202301010201").status = "not_reported"  # type: ignore[union-attr]
    by_class = statistics.statistics(db, REGISTRAR, "class")
    assert [(r["label"], r["count"]) for r in by_class["rows"]] == [("计科2301", 2), ("计科2302", 1)]
    assert by_class["total"] == 3 and "未报到" in by_class["excluded"]
    assert {r["label"]: r["count"] for r in statistics.statistics(db, REGISTRAR, "ethnicity")["rows"]} == {
        "汉族": 2, "回族": 1}
    assert {r["label"] for r in statistics.statistics(db, REGISTRAR, "region")["rows"]} == {"上海市", "未填写"}
    assert statistics.statistics(db, REGISTRAR, "grade")["rows"] == [{"key": "2023", "label": "2023级", "count": 3}]
    assert statistics.statistics(db, COUNSELOR, "class")["total"] == 2  # scope applies
    with pytest.raises(Invalid):
        statistics.statistics(db, REGISTRAR, "shoe_size")


def test_search_by_id_number_class_and_status_and_audit_history(db: Database) -> None:
    importing.import_students(db, IT, workbook([person(1), person(2), person(1, klass="2023010102")]))
    found = handlers.search_students(db, REGISTRAR, person(2)["national_id"].lower())
    assert [s["student_number"] for s in found["items"]] == ["202301010102"]
    assert handlers.search_students(db, REGISTRAR, "", class_code="2023010102")["total"] == 1
    assert handlers.search_students(db, REGISTRAR, "", status="graduated")["total"] == 0
    history = statistics.student_audit(db, REGISTRAR, "202301010101")
    assert [h["action"] for h in history] == ["student.register"] and history[0]["actor"] == "1000002"
    with pytest.raises(Forbidden):
        statistics.student_audit(db, COUNSELOR, "202301010101")


def test_other_documents_longer_than_a_resident_id_are_stored(db: Database) -> None:
    passport = "PE12345678901234567890"  # 22 characters
    result = importing.import_students(db, IT, workbook([person(1, id_type="护照", national_id=passport)]))
    assert result["ok"] and result["imported"] == 1
    with db.reading() as s:
        assert s.get(Student, "202301010101").national_id == passport  # type: ignore[union-attr]


def counting_forks(monkeypatch: Any) -> list[int]:
    """Files of 10 rows or more checked in two processes; the list grows by one per child forked."""
    forks: list[int] = []

    class Counted(importing.Forked):  # type: ignore[misc]
        def __init__(self, fn: Any) -> None:
            forks.append(1)
            super().__init__(fn)

    monkeypatch.setattr(importing, "Forked", Counted)
    monkeypatch.setattr(importing, "PARALLEL_MIN_ROWS", 5)
    return forks


def test_a_big_file_is_checked_in_two_processes_with_the_same_outcome(db: Database, monkeypatch: Any) -> None:
    """Errors, warnings and in-file duplicates in both halves and across them: the same answer as one process."""
    rows = [person(i) for i in range(1, 41)]
    rows[3]["gender"] = "X"  # an error in the first half
    rows[30]["phone"] = "12345"  # and one in the second
    rows[35]["national_id"] = rows[2]["national_id"]  # a duplicate across the halves
    rows[20]["native_place"] = "999999"
    content = workbook(rows)
    forks = counting_forks(monkeypatch)
    outcomes = {}
    for processes in (1, 2):
        monkeypatch.setattr(importing, "IMPORT_PROCESSES", processes)
        result = importing.import_students(db, IT, content, valid_only=True)
        outcomes[processes] = {k: v for k, v in result.items() if k != "annotated"}
        with db.transaction() as s:  # the next round imports into an empty register again
            drop_audit_guard(s)
            for table in ("audit_chain", "audit_chain_head", "audit_log", "outbox", "students"):
                s.execute(text(f"DELETE FROM {table}"))
    assert forks == [1]
    assert outcomes[1] == outcomes[2]
    assert outcomes[2]["imported"] == 35 and outcomes[2]["error_rows"] == 5
    assert {e["row"] for e in outcomes[2]["errors"]} == {5, 22, 32, 4, 37}


def test_a_failed_child_leaves_the_checks_to_the_parent(db: Database, monkeypatch: Any) -> None:
    checks = importing._row_results

    def failing_in_the_child(*args: Any, pause: bool) -> Any:
        if not pause:  # the child's call
            raise RuntimeError("child broke")
        return checks(*args, pause=pause)

    monkeypatch.setattr(importing, "_row_results", failing_in_the_child)
    monkeypatch.setattr(importing, "PARALLEL_MIN_ROWS", 5)
    monkeypatch.setattr(importing, "IMPORT_PROCESSES", 2)
    result = importing.import_students(db, IT, workbook([person(i) for i in range(1, 21)]))
    assert result["ok"] and result["imported"] == 20 and count(db, Student) == 20
