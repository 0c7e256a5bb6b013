"""批量学籍异动 from Excel (issue 5): cell checks, preview, all-or-nothing apply, against real databases."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import event, func, select

from services.common.audit import verify_chain
from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.common.models import AuditEntry, OutboxMessage
from services.common.sheets import ERROR_SHEET, export
from services.roster import batch_changes, handlers, importing, settings
from services.roster.adapters.orm import PendingGraduation, StatusChange, Student
from services.roster.domain import status as st
from services.roster.tests.factories import cn_name, student

SYSTEM = system_caller("test")
ACADEMIC = Caller("1000003", "1000003", "academic_affairs", Scope("institution"))
REGISTRAR = Caller("1000001", "1000001", "student_affairs", Scope("institution"))
AUTHORITY = Caller("1000009", "1000009", "authority", Scope("area", ("11",)))
COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
IT = Caller("1000002", "1000002", "it_centre", Scope("institution"))
HEADERS = ["学号", "姓名", "异动类型", "生效日期", "异动原因", "证明材料/文号"]

A1, A2, A3, A4, A5, A6 = (f"20230101010{i}" for i in range(1, 7))
B1 = "202301010201"  # another class: outside the counselor's scope


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("roster")
    handlers.upsert_org_units(database, SYSTEM, [
        {"code": "01", "name": "计算机学院", "kind": "college"},
        {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
        {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
        {"code": "2023010102", "name": "计科2302", "kind": "class", "parent_code": "0101"},
    ])
    importing.register_students(database, SYSTEM, [student(i) for i in range(1, 7)] + [student(1, klass="2023010102")])
    return database


def sheet(*rows: list[Any]) -> str:
    """The operator's own workbook (cells as typed: a value starting with = is a real formula)."""
    wb = Workbook()
    ws = wb.active
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def exported(*rows: dict[str, Any]) -> str:
    """A sheet written by the platform's own writer (formula-looking text escaped, as in the template)."""
    return base64.b64encode(export(batch_changes.columns(), rows, "学籍异动")).decode()


def status_of(db: Database, number: str) -> str:
    with db.reading() as s:
        row = s.get(Student, number)
        assert row is not None
        return row.status


def status_events(db: Database) -> list[dict[str, Any]]:
    with db.reading() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "student.status_changed")
                         .order_by(OutboxMessage.id)).all()
        return [json.loads(r.body) for r in rows]


def count(db: Database, model: Any, *where: Any) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def footprint(db: Database) -> tuple[int, int, int, dict[str, str]]:
    """Everything a batch would write: changes, events, audit entries, statuses."""
    with db.reading() as s:
        statuses = dict(s.execute(select(Student.student_number, Student.status)).tuples().all())
    return count(db, StatusChange), count(db, OutboxMessage), count(db, AuditEntry), statuses


def by_cell(result: dict[str, Any]) -> dict[tuple[int, str], str]:
    return {(e["row"], e["column"]): e["message"] for e in result["errors"]}


GOOD = (
    [A1, "学生零一", "毕业", date(2027, 6, 30), "修完学分", "教务〔2027〕12号"],
    [A2, "学生零二", "suspend", "2027-03-01", "因病休学", "医院证明"],
    [B1, "学生零一", "退学", "2027-03-02", "本人申请", "退学申请书"],
)


def test_good_sheet_previews_without_changing_anything_then_applies(db: Database) -> None:
    with db.transaction() as s:
        s.add(PendingGraduation(student_number=A1, reason="欠学分", state="open", created_by="t",
                                created_at=datetime.now(UTC)))
    before = footprint(db)
    preview = batch_changes.preview_status_batch(db, ACADEMIC, sheet(*GOOD))
    assert preview["ok"] and preview["errors"] == [] and preview["annotated"] is None
    assert preview["count"] == 3
    assert preview["rows"][0] == {
        "row": 2, "student_number": A1, "name": "学生零一", "kind": "graduate", "kind_label": "毕业",
        "from_status": "enrolled", "from_label": "在读", "to_status": "graduated", "to_label": "毕业",
        "effective_on": "2027-06-30", "reason": "修完学分", "evidence": "教务〔2027〕12号",
    }
    assert [r["kind"] for r in preview["rows"]] == ["graduate", "suspend", "withdraw"]
    assert footprint(db) == before  # the preview wrote nothing

    result = batch_changes.apply_status_batch(db, ACADEMIC, sheet(*GOOD))
    assert result["ok"] and result["count"] == 3 and result["annotated"] is None
    assert all(r["change_id"] for r in result["rows"])
    assert (status_of(db, A1), status_of(db, A2), status_of(db, B1)) == (st.GRADUATED, st.SUSPENDED, st.WITHDRAWN)
    assert status_of(db, A3) == st.ENROLLED

    published = status_events(db)
    assert [(e["payload"]["student_number"], e["payload"]["old_status"], e["payload"]["new_status"],
             e["payload"]["left"]) for e in published] == [
        (A1, "enrolled", "graduated", True), (A2, "enrolled", "suspended", False), (B1, "enrolled", "withdrawn", True)]
    assert {e["correlation_id"] for e in published} == {ACADEMIC.correlation_id}
    assert [e["payload"]["change_id"] for e in published] == [r["change_id"] for r in result["rows"]]

    with db.reading() as s:
        change = s.get(StatusChange, result["rows"][0]["change_id"])
        assert change is not None
        assert (change.kind, change.reason, change.evidence, change.actor_id) == (
            "graduate", "修完学分", "教务〔2027〕12号", ACADEMIC.username)
        assert change.effective_at.date() == date(2027, 6, 30)
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action.like("status.%"))
                            .order_by(AuditEntry.id)).all()
        assert [(e.action, e.target) for e in entries] == [
            ("status.graduate", A1), ("status.suspend", A2), ("status.withdraw", B1), ("status.batch", "students")]
        assert json.loads(entries[0].before) == {"status": "enrolled"}
        assert json.loads(entries[-1].after) == {"count": 3, "kinds": {"graduate": 1, "suspend": 1, "withdraw": 1}}
        assert verify_chain(s).ok
        pending = s.scalars(select(PendingGraduation)).one()
        assert (pending.state, pending.closed_reason) == ("closed", "毕业（批量异动）")


def test_sheet_with_errors_is_marked_cell_by_cell_and_changes_nothing(db: Database) -> None:
    content = sheet(
        ["202399999999", "无名", "毕业", "2027-06-30", "修完学分", "文号1"],   # 2 unknown number
        [A1, "张冠李戴", "毕业", "2027-06-30", "修完学分", "文号1"],          # 3 name mismatch
        [A2, "学生零二", "返校", "2027-06-30", "返校", "文号1"],                # 4 not from 在读
        [B1, "学生零一", "毕业", "2027-06-30", "修完学分", "文号1"],            # 5 outside the scope
        [A3, "学生零三", "毕业", "2027-06-30", "修完学分", "文号1"],            # 6 repeated below
        [A4, "学生零四", "毕业", "2027-13-01", "修完学分", "文号1"],            # 7 bad date
        [A3, "学生零三", "结业", "2027-06-30", "未修完", "文号2"],              # 8 repeat of row 6
        [A5, "学生零五", "休学", "2027-06-30", "", ""],                         # 9 role, required reason
        [A6, "学生零六", "毕业", "2027-06-30", "修完学分", ""],                 # 10 no evidence
        [A4, "学生零四", "升天", "2027-06-30", "x", "y"],                       # 11 unknown kind, repeat of 7
    )
    before = footprint(db)
    preview = batch_changes.preview_status_batch(db, COUNSELOR, content)
    cells = by_cell(preview)
    assert not preview["ok"]
    assert cells == {
        (2, "A"): "学生 202399999999 不在您的数据权限范围内",  # a counselor cannot probe which numbers exist
        (3, "B"): "姓名与学籍记录不一致（学籍中为“学生零一”）",
        (4, "C"): "学籍状态为“在读”，不能办理返校（仅限：疑似辍学、辍学）",
        (5, "A"): f"学生 {B1} 不在您的数据权限范围内",
        (6, "A"): "学号在表中重复（第 8 行）",
        (7, "A"): "学号在表中重复（第 11 行）",
        (7, "D"): "生效日期应为 YYYY-MM-DD 格式的日期",
        (8, "A"): "学号在表中重复（第 6 行）",
        (9, "C"): "您的角色不能办理休学",
        (9, "E"): "异动原因不能为空",
        (10, "F"): "毕业须有证明材料：上传附件或填写文号",
        (11, "A"): "学号在表中重复（第 7 行）",
        (11, "C"): "异动类型“升天”不存在",
    }
    assert preview["error_rows"] == 10 and preview["count"] == 10 and preview["rows"] == []
    assert {e["header"] for e in preview["errors"] if e["column"] == "C"} == {"异动类型"}

    wb = load_workbook(io.BytesIO(base64.b64decode(preview["annotated"])))
    data = wb.worksheets[0]
    assert data["B3"].fill.fgColor.rgb.endswith("FFC7CE") and "学生零一" in data["B3"].comment.text
    assert data["B2"].comment is None
    assert [r[0] for r in wb[ERROR_SHEET].iter_rows(min_row=2, values_only=True)] == \
        [2, 3, 4, 5, 6, 7, 7, 8, 9, 9, 10, 11, 11]

    applied = batch_changes.apply_status_batch(db, COUNSELOR, content)
    assert by_cell(applied) == cells and not applied["ok"] and applied["rows"] == []
    assert applied["annotated"]
    assert footprint(db) == before


def test_a_counselor_graduates_students_of_their_classes(db: Database) -> None:
    result = batch_changes.apply_status_batch(db, COUNSELOR, sheet(
        [A1, "学生零一", "毕业", "2027-06-30", "修完学分", "文号"],
        [A2, "学生零二", "肄业", "2027-06-30", "学分不足", "文号"]))
    assert result["ok"]
    assert (status_of(db, A1), status_of(db, A2)) == (st.GRADUATED, st.ATTENDANCE)


def test_a_reapplied_sheet_fails_cleanly(db: Database) -> None:
    assert batch_changes.apply_status_batch(db, ACADEMIC, sheet(*GOOD))["ok"]
    before = footprint(db)
    again = batch_changes.apply_status_batch(db, ACADEMIC, sheet(*GOOD))
    assert not again["ok"]
    assert by_cell(again) == {
        (2, "C"): "学籍状态为“毕业”，不能办理毕业（仅限：在读）",
        (3, "C"): "学籍状态为“休学”，不能办理休学（仅限：在读、借读）",
        (4, "C"): "学籍状态为“退学”，不能办理退学（仅限：在读、休学、参军、借读、未报到、疑似辍学、辍学）",
    }
    assert footprint(db) == before


def test_formula_looking_cells_are_kept_as_text_never_evaluated(db: Database) -> None:
    # The operator's real formulas: their text is never computed (no cached value → an empty cell).
    typed = batch_changes.preview_status_batch(db, ACADEMIC, sheet(
        [A1, "学生零一", "毕业", "2027-06-30", "=1+1", '=HYPERLINK("http://x","y")']))
    assert by_cell(typed) == {(2, "E"): "异动原因不能为空", (2, "F"): "毕业须有证明材料：上传附件或填写文号"}

    # Text that only looks like a formula is taken literally and goes back escaped in the annotated copy.
    bad = batch_changes.preview_status_batch(db, ACADEMIC, exported(
        {"student_number": A1, "name": "=A1", "kind": "毕业", "effective_on": "2027-06-30",
         "reason": "=1+1", "evidence": "@SUM(1)"}))
    assert by_cell(bad) == {(2, "B"): "姓名与学籍记录不一致（学籍中为“学生零一”）"}
    data = load_workbook(io.BytesIO(base64.b64decode(bad["annotated"]))).worksheets[0]
    assert [(data[c].value.lstrip("'"), data[c].data_type) for c in ("B2", "E2", "F2")] == [
        ("=A1", "s"), ("=1+1", "s"), ("@SUM(1)", "s")]  # text, not formulas

    good = batch_changes.apply_status_batch(db, ACADEMIC, exported(
        {"student_number": A1, "name": "学生零一", "kind": "毕业", "effective_on": "2027-06-30",
         "reason": "=1+1", "evidence": "@SUM(1)"}))
    assert good["ok"]
    with db.reading() as s:
        change = s.scalars(select(StatusChange).where(StatusChange.student_number == A1)).one()
        assert (change.reason, change.evidence) == ("=1+1", "@SUM(1)")


def test_kinds_needing_the_authoritys_approval_are_refused_in_a_sheet_except_for_the_authority(
        db: Database) -> None:
    settings.save_setting(db, REGISTRAR, "authority_approval_kinds", ["suspend"])
    content = sheet([A1, "学生零一", "休学", "2027-03-01", "因病休学", "医院证明"],
                    [A2, "学生零二", "毕业", "2027-06-30", "修完学分", "文号"])
    refused = batch_changes.apply_status_batch(db, ACADEMIC, content)
    assert by_cell(refused) == {
        (2, "C"): "休学须经学籍主管部门审批，不能批量办理；请通过异动办理表单逐个提交申请"}
    assert status_of(db, A2) == st.ENROLLED  # all or nothing

    choices = _template_choices(batch_changes.status_batch_template(db, ACADEMIC))
    assert "毕业" in choices and "休学" not in choices

    approved = batch_changes.apply_status_batch(db, AUTHORITY, content)
    assert approved["ok"]
    assert (status_of(db, A1), status_of(db, A2)) == (st.SUSPENDED, st.GRADUATED)


def test_template_lists_the_kinds_the_role_may_apply(db: Database) -> None:
    result = batch_changes.status_batch_template(db, COUNSELOR)
    assert result["filename"].endswith(".xlsx")
    wb = load_workbook(io.BytesIO(base64.b64decode(result["content"])))
    assert [c.value for c in wb.worksheets[0][1]] == HEADERS
    assert set(_template_choices(result)) == {"毕业", "结业", "肄业", "补报到", "疑似辍学", "返校"}


def test_only_roles_that_apply_changes_may_use_batches(db: Database) -> None:
    for caller in (IT, REGISTRAR, Caller("202301010101", "202301010101", "student", Scope("self", (A1,)))):
        with pytest.raises(Forbidden):
            batch_changes.preview_status_batch(db, caller, sheet(*GOOD))
        with pytest.raises(Forbidden):
            batch_changes.status_batch_template(db, caller)
    with pytest.raises(Invalid, match="没有数据行"):
        batch_changes.apply_status_batch(db, ACADEMIC, sheet())
    with pytest.raises(Invalid, match="不是有效的文件"):
        batch_changes.apply_status_batch(db, ACADEMIC, "not base64!")
    with pytest.raises(Invalid, match="缺少必填列"):
        batch_changes.preview_status_batch(db, ACADEMIC, base64.b64encode(
            export(batch_changes.columns()[:2], [], "x")).decode())


def test_students_are_loaded_in_one_query_per_chunk_not_per_row(db: Database,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_changes, "CHUNK", 2)  # 6 students → 3 IN queries, flushes mid-publish
    rows = [[n, cn_name(int(n[-2:])), "毕业", "2027-06-30", "修完学分", "文号"] for n in (A1, A2, A3, A4, A5)]
    rows.append([B1, "学生零一", "毕业", "2027-06-30", "修完学分", "文号"])
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        result = batch_changes.apply_status_batch(db, ACADEMIC, sheet(*rows))
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert result["ok"] and len(result["rows"]) == 6
    reads = [x for x in statements if x.lstrip().upper().startswith("SELECT") and "FROM students" in x]
    assert len(reads) == 3
    assert len(status_events(db)) == 6 and {status_of(db, n) for n in (A1, A5, B1)} == {st.GRADUATED}


# ---- cell checks without a database ---------------------------------------------------------------


def _raw(*rows: list[Any]) -> bytes:
    return base64.b64decode(sheet(*rows))


def test_read_sheet_accepts_excel_dates_labels_and_codes() -> None:
    checked = batch_changes.read_sheet(_raw(
        [A1, "学生零一", "graduate", datetime(2027, 6, 30), "r", "e"],
        [A2, "学生零二", " 毕业 ", "2027-06-30", "r", ""]), "academic_affairs")
    assert checked.errors == []
    assert [(r.kind.code if r.kind else None, r.day) for r in checked.rows] == \
        [("graduate", date(2027, 6, 30)), ("graduate", date(2027, 6, 30))]


@pytest.mark.parametrize("value", ["2027/06/30", "20270630", "2027-6-30", "明天", "2027-02-30",
                                   datetime(2027, 6, 30, 10, 0)])
def test_read_sheet_rejects_other_dates(value: Any) -> None:
    checked = batch_changes.read_sheet(_raw([A1, "学生零一", "毕业", value, "r", "e"]), "academic_affairs")
    assert [(e.column, e.message) for e in checked.errors] == [("D", "生效日期应为 YYYY-MM-DD 格式的日期")]


def _template_choices(result: dict[str, str]) -> list[str]:
    wb = load_workbook(io.BytesIO(base64.b64decode(result["content"])))
    return [row[0] for row in wb["字典"].iter_rows(values_only=True) if row[0]]
