"""组织机构 use cases (org_units.py) on real SQLite and PostgreSQL: all-or-nothing saves, the tree with
student counts in each role's scope, deletion of empty units only; every write audited (chained) and
published."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from services.common.audit import verify_chain
from services.common.caller import system_caller
from services.common.db import Database
from services.common.envelope import parse_envelope
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry, OutboxMessage
from services.common.testing import caller
from services.roster import org_units
from services.roster.adapters.orm import OrgUnit, Student

SYSTEM = system_caller("test")
OFFICE = caller("student_affairs")
ACADEMIC = caller("academic_affairs")
COUNSELOR = caller("counselor", "classes", "2023010102")
DEPUTY = caller("deputy_secretary", "college", "02")
TREE = [
    {"code": "01", "name": "计算机学院", "kind": "college"},
    {"code": "02", "name": "数学学院", "kind": "college"},
    {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
    {"code": "0102", "name": "软件工程", "kind": "major", "parent_code": "01"},
    {"code": "0201", "name": "数学", "kind": "major", "parent_code": "02"},
    {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
    {"code": "2023010102", "name": "计科2302", "kind": "class", "parent_code": "0101"},
    {"code": "2023020101", "name": "数学2301", "kind": "class", "parent_code": "0201"},
]


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    database = migrated_db("roster")
    org_units.upsert_org_units(database, OFFICE, TREE)
    now = datetime.now(UTC)
    with database.transaction() as s:  # rows as the register holds them (counts only need these columns)
        for klass, statuses in (("2023010101", ["enrolled"] * 3 + ["visiting", "suspended", "graduated"]),
                                ("2023010102", ["enrolled", "enrolled"]), ("2023020101", ["withdrawn"])):
            for seat, status in enumerate(statuses, start=1):
                s.add(Student(student_number=f"{klass}{seat:02d}", name=f"学生{seat}", gender="1",
                              college_code=klass[4:6], class_code=klass, status=status, created_at=now,
                              updated_at=now, major_code=klass[4:8]))
    return database


def outbox(db: Database) -> list[Any]:
    with db.reading() as s:
        bodies = s.scalars(select(OutboxMessage.body).where(OutboxMessage.event_type == "org.units_changed")
                           .order_by(OutboxMessage.id))
        return [parse_envelope(json.loads(b)) for b in bodies]


def audits(db: Database, action: str) -> list[AuditEntry]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def units(db: Database) -> dict[str, tuple[str, str | None]]:
    with db.reading() as s:
        return {u.code: (u.name, u.parent_code) for u in s.scalars(select(OrgUnit))}


def test_a_save_is_audited_chained_and_published(db: Database) -> None:
    assert len(audits(db, "org.upsert")) == len(TREE)
    [event] = outbox(db)
    assert [u["code"] for u in event.payload["units"]] == [u["code"] for u in TREE] and event.payload["removed"] == []
    with db.reading() as s:
        assert verify_chain(s).ok


def test_any_problem_saves_nothing_and_names_each_unit_and_field(db: Database) -> None:
    before = units(db)
    with pytest.raises(Invalid) as refused:
        org_units.upsert_org_units(db, OFFICE, [
            {"code": "03", "name": "外国语学院", "kind": "college"},  # fine alone
            {"code": "0301", "name": "", "kind": "major", "parent_code": "03"},
            {"code": "2023030201", "name": "英语2301", "kind": "class", "parent_code": "0301"},
        ])
    assert refused.value.field == "name"
    assert "0301 请填写名称" in str(refused.value) and "2023030201 新班级代码的第 5–8 位" in str(refused.value)
    assert units(db) == before and len(outbox(db)) == 1 and len(audits(db, "org.upsert")) == len(TREE)


def test_reorganisation_moves_a_class_keeping_its_code(db: Database) -> None:
    org_units.upsert_org_units(db, OFFICE, [{"code": "2023010102", "name": "数学2302", "kind": "class",
                                             "parent_code": "0201"}])
    assert units(db)["2023010102"] == ("数学2302", "0201")
    [entry] = [a for a in audits(db, "org.upsert") if a.target == "2023010102"][-1:]
    assert json.loads(entry.before or "{}")["parent_code"] == "0101"
    assert json.loads(entry.after or "{}")["parent_code"] == "0201"
    listed = {r["code"]: r for r in org_units.list_org_units(db, OFFICE)["items"]}
    assert (listed["02"]["students"], listed["01"]["students"]) == (2, 4)


def test_only_student_affairs_and_the_system_save_or_delete(db: Database) -> None:
    for who in (ACADEMIC, COUNSELOR):
        with pytest.raises(Forbidden):
            org_units.upsert_org_units(db, who, [{"code": "03", "name": "外国语学院", "kind": "college"}])
        with pytest.raises(Forbidden):
            org_units.delete_org_unit(db, who, "0102")
    org_units.upsert_org_units(db, SYSTEM, [{"code": "03", "name": "外国语学院", "kind": "college"}])


def test_the_tree_with_on_campus_counts_rolled_up_for_the_offices(db: Database) -> None:
    listed = org_units.list_org_units(db, ACADEMIC)
    rows = [(r["code"], r["depth"], r["students"]) for r in listed["items"]]
    assert rows == [("01", 0, 6), ("0101", 1, 6), ("2023010101", 2, 4), ("2023010102", 2, 2), ("0102", 1, 0),
                    ("02", 0, 0), ("0201", 1, 0), ("2023020101", 2, 0)]
    assert not listed["may_edit"] and not any(r["deletable"] for r in listed["items"])
    office = {r["code"]: r for r in org_units.list_org_units(db, OFFICE)["items"]}
    # Empty: no child units and no student ever (a class whose only student withdrew is not empty).
    assert [c for c, r in office.items() if r["deletable"]] == ["0102"]
    assert office["2023010101"]["parent_name"] == "计算机科学与技术" and office["01"]["kind_label"] == "学院"


def test_a_counselor_and_a_deputy_see_their_part_and_its_counts_only(db: Database) -> None:
    mine = [(r["code"], r["students"]) for r in org_units.list_org_units(db, COUNSELOR)["items"]]
    assert mine == [("01", 2), ("0101", 2), ("2023010102", 2)]
    college = [r["code"] for r in org_units.list_org_units(db, DEPUTY)["items"]]
    assert college == ["02", "0201", "2023020101"]
    for who in (caller("student", "self", "202301010101"), caller("authority", "area", "11")):
        with pytest.raises(Forbidden):
            org_units.list_org_units(db, who)


def test_only_an_empty_unit_is_deleted_audited_and_published(db: Database) -> None:
    for code, why in (("0101", "下还有 2 个下级单位"), ("2023020101", "有 1 名学生的学籍记录（含已离校）")):
        with pytest.raises(Conflict, match=why):
            org_units.delete_org_unit(db, OFFICE, code)
    with pytest.raises(NotFound):
        org_units.delete_org_unit(db, OFFICE, "0909")
    assert org_units.delete_org_unit(db, OFFICE, "0102") == {"deleted": "0102"}
    assert "0102" not in units(db)
    [entry] = audits(db, "org.delete")
    assert entry.target == "0102"
    assert outbox(db)[-1].payload == {"units": [], "removed": ["0102"]}
    with db.reading() as s:
        assert verify_chain(s).ok
        assert s.scalar(select(func.count()).select_from(OrgUnit)) == len(TREE) - 1


def test_a_college_named_by_a_student_record_is_not_empty(db: Database) -> None:
    org_units.upsert_org_units(db, OFFICE, [{"code": "09", "name": "旧学院", "kind": "college"}])
    now = datetime.now(UTC)
    with db.transaction() as s:  # a student whose class is not in the tree still names the college
        s.add(Student(student_number="202309010101", name="旧生", gender="1", college_code="09",
                      class_code="2023090101", status="graduated", created_at=now, updated_at=now))
    assert not {r["code"]: r for r in org_units.list_org_units(db, OFFICE)["items"]}["09"]["deletable"]
    with pytest.raises(Conflict, match="有 1 名学生"):
        org_units.delete_org_unit(db, OFFICE, "09")


# ---- 导入 by sheet ----------------------------------------------------------------------------------------


def sheet(*rows: tuple[str, str, str, str | None]) -> str:
    wb = Workbook()
    ws = wb.active
    ws.append(["类型", "代码", "名称", "上级代码"])
    for row in rows:
        ws.append(list(row))
    buffer = io.BytesIO()
    wb.save(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def test_template_has_the_columns_and_a_kind_dropdown(db: Database) -> None:
    made = org_units.org_units_template(db, OFFICE)
    ws = load_workbook(io.BytesIO(base64.b64decode(made["content"]))).worksheets[0]
    assert [c.value for c in ws[1]] == ["类型", "代码", "名称", "上级代码"]
    with pytest.raises(Forbidden):
        org_units.org_units_template(db, ACADEMIC)


def test_a_sheet_with_errors_changes_nothing_and_comes_back_annotated(db: Database) -> None:
    content = sheet(("学院", "03", "外国语学院", None), ("专业", "0301", "英语", "03"),
                    ("班级", "2025030201", "英语2501", "0301"), ("校区", "X1", "东校区", None))
    before = units(db)
    answer = org_units.apply_org_units_import(db, OFFICE, content)
    assert not answer["ok"] and not answer["applied"] and units(db) == before
    assert [(e["row"], e["column"], e["header"]) for e in answer["errors"]] == [(4, "B", "代码"), (5, "A", "类型")]
    annotated = load_workbook(io.BytesIO(base64.b64decode(answer["annotated"])))
    assert "第 5–8 位" in annotated.worksheets[0]["B4"].comment.text
    assert "错误说明" in annotated.sheetnames


def test_a_clean_sheet_previews_then_applies_and_again_changes_nothing(db: Database) -> None:
    content = sheet(("学院", "03", "外国语学院", None), ("专业", "0301", "英语", "03"),
                    ("班级", "2025030101", "英语2501", "0301"), ("班级", "2023010102", "计科2302", "0102"),
                    ("学院", "01", "计算机学院", None))
    preview = org_units.preview_org_units_import(db, OFFICE, content)
    assert preview["ok"] and (preview["new"], preview["changed"], preview["unchanged"]) == (3, 1, 1)
    assert "03" not in units(db)
    events = len(outbox(db))
    answer = org_units.apply_org_units_import(db, OFFICE, content)
    assert answer["applied"] and units(db)["2023010102"] == ("计科2302", "0102") and "2025030101" in units(db)
    assert [u["code"] for u in outbox(db)[-1].payload["units"]] == ["03", "0301", "2025030101", "2023010102"]
    again = org_units.apply_org_units_import(db, OFFICE, content)
    assert again["applied"] and again["unchanged"] == 5 and len(outbox(db)) == events + 1
