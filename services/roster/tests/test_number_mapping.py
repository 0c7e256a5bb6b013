"""R3: provisional numbers (考生号) replaced from the mapping sheet — domain rules, and the use case
against real SQLite and PostgreSQL (every number-keyed table renamed, recorded, audited, published)."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from services.common.audit import verify_chain
from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid
from services.common.models import AuditEntry, OutboxMessage
from services.roster import handlers, importing, number_mapping
from services.roster.adapters.orm import Absence, NumberChange, StatusChange, Student
from services.roster.domain import number_mapping as nm
from services.roster.domain.record import check_record
from services.roster.domain.students import is_provisional
from services.roster.tests.factories import student
from services.roster.tests.test_record import BOOK, TODAY
from services.roster.tests.test_record import row as record_row

SYSTEM = system_caller("test")
ACADEMIC = Caller("1000003", "1000003", "academic_affairs", Scope("institution"))
REGISTRAR = Caller("1000001", "1000001", "student_affairs", Scope("institution"))
COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
HEADERS = ["考生号", "学号", "姓名"]


def exam(seat: int) -> str:
    return f"2311010115{seat:04d}"


def provisional(seat: int, klass: str = "2023010101") -> dict[str, Any]:
    row = student(seat, klass=klass)
    return {**row, "student_number": exam(seat), "exam_number": exam(seat)}


# ---- domain ---------------------------------------------------------------------------------------

def holder(number: str, exam_number: str | None, name: str = "学生零一", klass: str = "2023010101") -> nm.Holder:
    return nm.Holder(number, exam_number, name, klass[4:6], klass)


def test_provisional_number_is_the_exam_number() -> None:
    assert is_provisional("23110101150001", "23110101150001")
    assert not is_provisional("202301010101", "23110101150001")
    assert not is_provisional("23110101150001", None)
    assert not is_provisional("X311010115", "X311010115")  # a 考生号 is digits only


def test_register_takes_a_provisional_number_and_still_checks_the_class() -> None:
    check = check_record(provisional(1), BOOK, today=TODAY, classes={"2023010101": "0101"})
    assert check.ok, check.errors
    assert check.values["student_number"] == check.values["exam_number"] == exam(1)
    assert check.values["college_code"] == "01"  # from the class
    unknown = check_record({**provisional(1), "class_code": "2023020101"}, BOOK, today=TODAY,
                           classes={"2023010101": "0101"})
    assert [e.field for e in unknown.errors] == ["class_code"]
    # without the 考生号 the number must follow R6
    assert [e.field for e in check_record({**provisional(1), "exam_number": ""}, BOOK, today=TODAY).errors] == [
        "student_number"]


def test_cell_problems_mark_blanks_shapes_and_both_rows_of_a_repeat() -> None:
    rows = [nm.MappingRow(2, exam(1), "202301010101", "学生零一"), nm.MappingRow(3, "12ab", "", "学生零二"),
            nm.MappingRow(4, exam(4), "202301010101", "")]
    found = {(p.excel_row, p.key, p.message) for p in nm.cell_problems(rows)}
    assert found == {
        (3, "exam_number", "考生号应为8到20位数字"), (3, "new_number", "学号不能为空"), (4, "name", "姓名不能为空"),
        (4, "new_number", "学号在表中重复（第 2 行）"), (2, "new_number", "学号在表中重复（第 4 行）"),
    }


def test_register_problems() -> None:
    row = nm.MappingRow(2, exam(1), "202301010101", "学生零一")
    assert nm.register_problems(row, holder(exam(1), exam(1)), None) == (nm.CHANGE, [])
    outcome, problems = nm.register_problems(row, None, None)
    assert [p.message for p in problems] == [f"考生号 {exam(1)} 没有对应的学生"]
    _, problems = nm.register_problems(row, holder(exam(1), exam(1), name="李四"), None)
    assert [(p.key, p.message) for p in problems] == [("name", "姓名与学籍记录不一致（学籍中为“李四”）")]
    assert nm.register_problems(row, holder("202301010101", exam(1)), None) == (nm.UNCHANGED, [])
    _, problems = nm.register_problems(row, holder("202301010199", exam(1)), None)
    assert "已换发学号 202301010199" in problems[0].message
    wrong_class = nm.MappingRow(2, exam(1), "202301010201", "学生零一")
    _, problems = nm.register_problems(wrong_class, holder(exam(1), exam(1)), None)
    assert problems[0].key == "new_number" and "班级" in problems[0].message
    _, problems = nm.register_problems(row, holder(exam(1), exam(1)), holder("202301010101", None, "王五"))
    assert problems[0].message == "学号 202301010101 已被王五（2023010101）使用"


def test_former_numbers_follow_the_chain_back() -> None:
    assert nm.former_numbers({"C": "B", "B": "A"}, "C") == ["B", "A"]
    assert nm.former_numbers({}, "C") == []
    assert nm.former_numbers({"A": "B", "B": "A"}, "A") == ["B"]  # a loop ends


def test_every_number_keyed_roster_table_is_renamed() -> None:
    # Pinned: a new table with a student_number column joins the rename without code changes; this
    # list says which ones do today (number_changes keeps history under its own columns).
    assert {t.name for t, _ in number_mapping.RENAMED} >= {
        "status_changes", "status_applications", "status_attachments", "absences", "pending_graduations",
        "class_moves", "clearance_events", "change_requests", "transfer_admissions", "student_photos",
    }
    assert "students" not in {t.name for t, _ in number_mapping.RENAMED}


# ---- use case against real databases --------------------------------------------------------------

@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("roster")
    handlers.upsert_org_units(database, SYSTEM, [
        {"code": "01", "name": "计算机学院", "kind": "college"},
        {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
        {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
        {"code": "2023010102", "name": "计科2302", "kind": "class", "parent_code": "0101"},
    ])
    importing.register_students(database, SYSTEM, [provisional(1), provisional(2), provisional(3),
                                                   student(9)])  # 202301010109 has its number already
    now = datetime.now(UTC)
    with database.transaction() as s:  # rows in other tables that refer to the provisional number
        s.add(Absence(student_number=exam(1), day=date(2026, 9, 7), entered_by="t", entered_at=now))
        s.add(StatusChange(student_number=exam(1), old_status="enrolled", new_status="suspended", reason="测试",
                           effective_at=now, actor_kind="user", actor_id="t", created_at=now))
    return database


def sheet(*rows: list[Any]) -> str:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


GOOD = sheet([exam(1), "202301010101", "学生零一"], [exam(2), "202301010102", "学生零二"])


def numbers(db: Database) -> set[str]:
    with db.reading() as s:
        return set(s.scalars(select(Student.student_number)))


def events(db: Database) -> list[dict[str, Any]]:
    with db.reading() as s:
        query = select(OutboxMessage).where(OutboxMessage.event_type == "student.number_changed")
        return [json.loads(r.body)["payload"] for r in s.scalars(query.order_by(OutboxMessage.id))]


def test_template_and_roles(db: Database) -> None:
    template = number_mapping.number_mapping_template(db, ACADEMIC)
    headers = [c.value for c in load_workbook(io.BytesIO(base64.b64decode(template["content"]))).worksheets[0][1]]
    assert headers == HEADERS
    for call in (lambda: number_mapping.preview_number_mapping(db, COUNSELOR, GOOD),
                 lambda: number_mapping.apply_number_mapping(db, COUNSELOR, GOOD, "教务〔2026〕1号")):
        with pytest.raises(Forbidden):
            call()


def test_preview_changes_nothing(db: Database) -> None:
    before = numbers(db)
    preview = number_mapping.preview_number_mapping(db, REGISTRAR, GOOD)
    assert preview["ok"] and preview["changes"] == 2 and preview["annotated"] is None
    assert [(r["old_number"], r["new_number"], r["outcome"]) for r in preview["rows"]] == [
        (exam(1), "202301010101", "change"), (exam(2), "202301010102", "change")]
    assert numbers(db) == before and events(db) == []


def test_apply_renames_everywhere_records_audits_and_publishes(db: Database) -> None:
    with db.reading() as s:
        national_id = s.get(Student, exam(1)).national_id
    result = number_mapping.apply_number_mapping(db, ACADEMIC, GOOD, "教务〔2026〕12号")
    assert result["ok"] and result["changes"] == 2 and result["batch_id"]
    assert numbers(db) == {"202301010101", "202301010102", exam(3), "202301010109"}
    with db.reading() as s:
        renamed = s.get(Student, "202301010101")
        assert renamed.national_id == national_id and renamed.exam_number == exam(1) and renamed.name == "学生零一"
        assert s.scalar(select(Absence.student_number)) == "202301010101"
        assert s.scalar(select(StatusChange.student_number)) == "202301010101"
        changes = s.scalars(select(NumberChange).order_by(NumberChange.id)).all()
        assert [(c.old_number, c.new_number, c.actor_id, c.reason, c.batch_id) for c in changes] == [
            (exam(1), "202301010101", ACADEMIC.username, "教务〔2026〕12号", result["batch_id"]),
            (exam(2), "202301010102", ACADEMIC.username, "教务〔2026〕12号", result["batch_id"])]
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "student.renumber")) == 2
        assert verify_chain(s).ok
    published = events(db)
    assert [(e["old_number"], e["new_number"]) for e in published] == [
        (exam(1), "202301010101"), (exam(2), "202301010102")]
    assert published[0]["national_id"] == national_id

    history = number_mapping.number_changes(db, COUNSELOR, exam(1))  # a former number leads to the record
    assert history["student_number"] == "202301010101" and history["former_numbers"] == [exam(1)]
    assert history["changes"][0]["reason"] == "教务〔2026〕12号"

    again = number_mapping.apply_number_mapping(db, ACADEMIC, GOOD, "教务〔2026〕12号")
    assert again["ok"] and again["changes"] == 0 and again["unchanged"] == 2 and again["batch_id"] is None
    assert len(events(db)) == 2
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(NumberChange)) == 2


def test_one_bad_row_changes_nothing_and_comes_back_annotated(db: Database) -> None:
    bad = sheet([exam(1), "202301010101", "学生零一"], [exam(2), "202301010109", "学生零二"],  # number taken
                [exam(3), "202301010203", "学生零三"], ["23110101159999", "202301010104", "某某"])
    result = number_mapping.apply_number_mapping(db, ACADEMIC, bad, "教务〔2026〕12号")
    assert not result["ok"] and result["error_rows"] == 3
    assert {(e["row"], e["column"]) for e in result["errors"]} == {(3, "B"), (4, "B"), (5, "A")}
    assert exam(1) in numbers(db) and events(db) == []
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(NumberChange)) == 0
    data = load_workbook(io.BytesIO(base64.b64decode(result["annotated"]))).worksheets[0]
    assert "已被学生零九" in data["B3"].comment.text and data["B2"].comment is None


@pytest.mark.parametrize("db_backend", ["postgresql"])  # SQLite runs one writer at a time: no such race
def test_two_batches_giving_the_same_number_at_once_the_second_is_refused_cleanly(
        db: Database, db_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch B is checked (the new number is free, nothing to lock), then batch A gives that number to
    another student and commits, then B writes: a clean Conflict naming the number, nothing of B kept."""
    first = sheet([exam(1), "202301010101", "学生零一"])
    second = sheet([exam(2), "202301010101", "学生零二"])
    real_check = number_mapping.check
    interleaved: list[dict[str, Any]] = []

    def check_then_let_the_other_batch_commit(s: Any, rows: Any, *, lock: bool) -> Any:
        found = real_check(s, rows, lock=lock)
        if lock and not interleaved:
            monkeypatch.setattr(number_mapping, "check", real_check)
            interleaved.append(number_mapping.apply_number_mapping(db, ACADEMIC, first, "教务〔2026〕12号"))
        return found

    monkeypatch.setattr(number_mapping, "check", check_then_let_the_other_batch_commit)
    with pytest.raises(Conflict) as err:
        number_mapping.apply_number_mapping(db, ACADEMIC, second, "教务〔2026〕13号")
    assert err.value.args[0].startswith("新学号 202301010101 已被占用，请刷新后重试")
    assert err.value.field == "new_number"
    assert interleaved[0]["ok"] and interleaved[0]["changes"] == 1
    assert numbers(db) == {"202301010101", exam(2), exam(3), "202301010109"}
    with db.reading() as s:
        assert s.scalar(select(Student.name).where(Student.student_number == "202301010101")) == "学生零一"
        assert [c.old_number for c in s.scalars(select(NumberChange))] == [exam(1)]
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "student.renumber")) == 1
        assert verify_chain(s).ok
    assert [(e["old_number"], e["new_number"]) for e in events(db)] == [(exam(1), "202301010101")]


def test_reason_is_required_and_a_counselor_outside_scope_is_refused(db: Database) -> None:
    with pytest.raises(Invalid):
        number_mapping.apply_number_mapping(db, ACADEMIC, GOOD, "  ")
    outsider = Caller("1000005", "1000005", "counselor", Scope("classes", ("2023010102",)))
    with pytest.raises(Forbidden):
        number_mapping.number_changes(db, outsider, exam(1))


def test_the_import_takes_a_provisional_number_with_its_exam_number() -> None:
    check = check_record(record_row(student_number=exam(1), exam_number=exam(1), class_code="2023010101"), BOOK,
                         today=TODAY)
    assert check.ok, check.errors
    assert check.values["college_code"] == "01"  # from the class: a 考生号 says nothing of the college
    refused = check_record(record_row(student_number=exam(1), exam_number=exam(2)), BOOK, today=TODAY)
    assert [e.field for e in refused.errors] == ["student_number"]
