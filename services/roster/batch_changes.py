"""批量学籍异动 (issue 5, R8): status changes from an Excel sheet, previewed, then applied all or nothing.

The same shape as the roster import (importing.py): cells are read and checked outside any
transaction (`read_sheet`), then the register is consulted in one `IN` query per `CHUNK`
numbers (`check_register`: scope, name, the transition table); a sheet with any error changes
nothing and comes back annotated. Applying repeats the register checks inside the
transaction (rows locked), stages every change through `status_changes.stage_kind`, flushes
once for their ids, then publishes one `student.status_changed` per student and writes one
chained audit entry per student plus a summary, as the import does.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import (
    ACADEMIC_AFFAIRS,
    AUTHORITY,
    STUDENT_AFFAIRS,
    SYSTEM,
    Caller,
)
from services.common.db import Database
from services.common.errors import Invalid
from services.common.sheets import CellError, Column, annotate, column_letter, read_rows, template
from services.roster import settings as cfg
from services.roster.adapters.orm import Student
from services.roster.domain import status as st
from services.roster.domain import transitions as tr
from services.roster.handlers import actor_of, publish_status_change
from services.roster.importing import CHUNK, MAX_LISTED_ERRORS, _b64, _chunks, _error_dict, _pause
from services.roster.status_changes import GRADUATION_KINDS, check_details, close_pending_graduations, stage_kind

# Everyone who may apply some kind, and the authority (who applies as academic affairs, as on the form).
BATCH_ROLES = tuple(sorted({role for k in tr.KINDS.values() for role in k.roles} | {AUTHORITY}))
# Unknown numbers are "not found" only for institution-wide callers, so nobody probes other scopes.
INSTITUTION_WIDE = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, SYSTEM, AUTHORITY)


def columns(role: str = SYSTEM, excluded: Iterable[str] = ()) -> list[Column]:
    """The sheet's layout; the kind dropdown lists what `role` may apply here."""
    skip = set(excluded)
    kinds = tuple(k.label for k in tr.KINDS.values() if tr.may_apply(k, role) and k.code not in skip)
    return [
        Column("student_number", "学号", required=True, text=True, width=16),
        Column("name", "姓名", required=True, note="须与学籍中的姓名一致", width=12),
        Column("kind", "异动类型", required=True, choices=kinds, note="如 休学、退学、毕业", width=12),
        Column("effective_on", "生效日期", required=True, note="格式 YYYY-MM-DD，如 2027-06-30", width=14),
        Column("reason", "异动原因", required=True, width=30),
        Column("evidence", "证明材料/文号", note="文件文号或证明材料说明；多数异动类型必填", width=24),
    ]


HEADERS = {c.key: c.header for c in columns()}
LETTERS = {c.key: column_letter(columns(), c.key) for c in columns()}


@dataclass
class Row:
    """One data row of the sheet as read; `kind`/`day` are None when their cell is bad."""

    excel_row: int
    student_number: str
    name: str
    kind: tr.Kind | None
    day: date | None
    reason: str
    evidence: str


@dataclass
class Checked:
    rows: list[Row] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)
    bad_rows: set[int] = field(default_factory=set)

    def flag(self, row: int, key: str, value: Any, message: str) -> None:
        self.errors.append(CellError(row, LETTERS[key], HEADERS[key], value, message))
        self.bad_rows.add(row)


def batch_role(caller: Caller) -> str:
    """The role each row is checked under: the authority applies as academic affairs (as on the form)."""
    return ACADEMIC_AFFAIRS if caller.role == AUTHORITY else caller.role


def read_sheet(data: bytes, role: str) -> Checked:
    """Every cell check that needs no database: required cells, kind, role, date, repeated numbers."""
    checked = Checked()
    seen: dict[str, int] = {}  # number → its first row
    repeated: set[int] = set()
    for excel_row, raw in read_rows(data, columns()):
        if excel_row % CHUNK == 0:
            _pause()
        for key in ("student_number", "name", "kind", "effective_on", "reason"):
            if not raw[key]:
                checked.flag(excel_row, key, "", f"{HEADERS[key]}不能为空")
        kind = tr.kind_by_label(raw["kind"]) if raw["kind"] else None
        if raw["kind"] and kind is None:
            checked.flag(excel_row, "kind", raw["kind"], f"异动类型“{raw['kind']}”不存在")
        elif kind is not None and not tr.may_apply(kind, role):
            checked.flag(excel_row, "kind", raw["kind"], f"您的角色不能办理{kind.label}")
            kind = None
        day = _day(raw["effective_on"])
        if raw["effective_on"] and day is None:
            checked.flag(excel_row, "effective_on", raw["effective_on"], "生效日期应为 YYYY-MM-DD 格式的日期")
        number = raw["student_number"]
        if number:
            first = seen.setdefault(number, excel_row)
            if first != excel_row:
                checked.flag(excel_row, "student_number", number, f"学号在表中重复（第 {first} 行）")
                if first not in repeated:  # the first row is marked once, naming its first repeat
                    repeated.add(first)
                    checked.flag(first, "student_number", number, f"学号在表中重复（第 {excel_row} 行）")
        checked.rows.append(Row(excel_row, number, raw["name"], kind, day, raw["reason"], raw["evidence"]))
    return checked


def check_register(checked: Checked, students: Mapping[str, Student], caller: Caller, *,
                   approval_kinds: Iterable[str], today: date) -> list[Row]:
    """The checks against the register (no queries: `students` holds every number of the sheet).

    Returns the rows that may apply; problems are added to `checked`."""
    role = batch_role(caller)
    needs_approval = set(approval_kinds) if caller.role not in (AUTHORITY, SYSTEM) else set()
    good: list[Row] = []
    for row in checked.rows:
        student = students.get(row.student_number) if row.student_number else None
        if row.student_number and (student is None or not _in_scope(caller, student)):
            message = f"学号 {row.student_number} 不存在" if caller.role in INSTITUTION_WIDE and student is None \
                else f"学生 {row.student_number} 不在您的数据权限范围内"
            checked.flag(row.excel_row, "student_number", row.student_number, message)
            student = None
        if student is not None and row.name and row.name != student.name:
            checked.flag(row.excel_row, "name", row.name, f"姓名与学籍记录不一致（学籍中为“{student.name}”）")
        kind = row.kind
        if kind is not None and kind.code in needs_approval:
            checked.flag(row.excel_row, "kind", kind.label,
                         f"{kind.label}须经学籍主管部门审批，不能批量办理；请通过异动办理表单逐个提交申请")
        elif kind is not None and student is not None:
            _check_transition(checked, row, kind, student, role, today)
        if row.excel_row not in checked.bad_rows:
            good.append(row)
    return good


def _check_transition(checked: Checked, row: Row, kind: tr.Kind, student: Student, role: str,
                      today: date) -> None:
    problem = tr.refusal(kind, student.status)
    if problem:
        checked.flag(row.excel_row, "kind", kind.label, problem)
        return
    try:  # what the single form asks beyond the sheet's columns (e.g. a discharge date) cannot be batched
        check_details(kind, student.status, {}, today)
    except Invalid as exc:
        checked.flag(row.excel_row, "kind", kind.label, f"{exc}，请通过异动办理表单逐个办理")
        return
    # The table's remaining rule is the evidence (role and start status passed above). A blank reason is
    # already flagged as a required cell; stand in for it so the evidence cell is still checked.
    try:
        tr.check(kind, student.status, role, reason=row.reason or "-", evidence=row.evidence, attachments=0)
    except tr.TransitionError as exc:
        checked.flag(row.excel_row, "evidence", row.evidence, exc.message)


def _in_scope(caller: Caller, student: Student) -> bool:
    if caller.role in (SYSTEM, AUTHORITY):  # an authority's area covers the institution's students
        return True
    return caller.scope.covers_student(student.student_number, student.college_code, student.class_code)


def _day(text: str) -> date | None:
    if len(text) != 10:  # date.fromisoformat also takes 20270630 and week dates; the sheet says YYYY-MM-DD
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# ---- use cases -----------------------------------------------------------------------------------


def status_batch_template(db: Database, caller: Caller) -> dict[str, str]:
    caller.require_role(*BATCH_ROLES)
    with db.reading() as s:
        excluded = _approval_kinds(s, caller)
    content = template(columns(batch_role(caller), excluded), "学籍异动")
    return {"filename": "批量学籍异动模板.xlsx", "content": _b64(content)}


def preview_status_batch(db: Database, caller: Caller, content: str) -> dict[str, Any]:
    """What the sheet would change, with every problem; changes nothing."""
    caller.require_role(*BATCH_ROLES)
    data = _decode(content)
    checked = read_sheet(data, batch_role(caller))
    _require_rows(checked)
    with db.reading() as s:
        students = _load(s, checked.rows)
        good = check_register(checked, students, caller, approval_kinds=_approval_kinds(s, caller),
                              today=date.today())
        # The rows that passed, even beside errors: what the sheet will change once the errors are fixed.
        rows = [_view(r, students[r.student_number]) for r in good]
    return _result(data, checked, rows)


def apply_status_batch(db: Database, caller: Caller, content: str) -> dict[str, Any]:
    """Apply the sheet: every row or, with any error, none (the preview's answer then)."""
    caller.require_role(*BATCH_ROLES)
    data = _decode(content)
    checked = read_sheet(data, batch_role(caller))
    _require_rows(checked)
    rows: list[dict[str, Any]] = []
    with db.transaction() as s, s.no_autoflush:
        students = _load(s, checked.rows, lock=True)  # a concurrent single change waits for this batch
        good = check_register(checked, students, caller, approval_kinds=_approval_kinds(s, caller),
                              today=date.today())
        if not checked.errors:
            rows = _apply(s, caller, good, students)
    # Annotated outside the transaction: SQLite would keep other writers waiting meanwhile.
    return _result(data, checked, rows)


def _apply(s: Session, caller: Caller, good: Sequence[Row], students: Mapping[str, Student]) -> list[dict[str, Any]]:
    role = batch_role(caller)
    staged = []
    for index, row in enumerate(good, start=1):
        if index % CHUNK == 0:
            _pause()
        assert row.kind is not None and row.day is not None  # check_register passed it
        student = students[row.student_number]
        view = _view(row, student)
        change = stage_kind(s, student, row.kind, role=role, reason=row.reason, effective_on=row.day,
                            actor_caller=caller, evidence=row.evidence)
        staged.append((row, change, view))
    s.flush()  # one flush gives every change its id (and orders them for consumers)
    actor = actor_of(caller)
    closing: dict[str, list[str]] = {}
    for index, (row, change, view) in enumerate(staged, start=1):
        if index % CHUNK == 0:
            s.flush()  # written events and audit entries are then released, not held to commit
            _pause()
        kind = row.kind
        assert kind is not None and row.day is not None
        publish_status_change(s, change, actor=actor, correlation_id=caller.correlation_id)
        audit(s, caller, f"status.{kind.code}", row.student_number, {"status": change.old_status},
              {"status": change.new_status, "change_id": change.id, "reason": change.reason,
               "effective_on": row.day.isoformat(), "evidence": change.evidence, "batch": True}, chain=True)
        if kind.code in GRADUATION_KINDS or st.has_left(kind.to_status):
            closing.setdefault(kind.label, []).append(row.student_number)
        view["change_id"] = change.id
    for label, numbers in closing.items():
        for chunk in _chunks(numbers, CHUNK):
            close_pending_graduations(s, list(chunk), f"{label}（批量异动）")
    audit(s, caller, "status.batch", "students", None,
          {"count": len(staged), "kinds": dict(Counter(r.kind.code for r, _, _ in staged if r.kind))}, chain=True)
    return [view for _, _, view in staged]


def _load(s: Session, rows: Sequence[Row], *, lock: bool = False) -> dict[str, Student]:
    numbers = sorted({r.student_number for r in rows if r.student_number})  # sorted: locks in one order
    students: dict[str, Student] = {}
    for chunk in _chunks(numbers, CHUNK):
        query = select(Student).where(Student.student_number.in_(chunk)).order_by(Student.student_number)
        students.update((x.student_number, x) for x in s.scalars(query.with_for_update() if lock else query))
    return students


def _approval_kinds(s: Session, caller: Caller) -> list[str]:
    """Kinds that wait for the authority's approval (K-12): not batchable except by the authority."""
    if caller.role in (AUTHORITY, SYSTEM):
        return []
    return list(cfg.current(s)["authority_approval_kinds"])


def _view(row: Row, student: Student) -> dict[str, Any]:
    assert row.kind is not None and row.day is not None
    return {
        "row": row.excel_row, "student_number": row.student_number, "name": student.name,
        "kind": row.kind.code, "kind_label": row.kind.label,
        "from_status": student.status, "from_label": st.label(student.status),
        "to_status": row.kind.to_status, "to_label": st.label(row.kind.to_status),
        "effective_on": row.day.isoformat(), "reason": row.reason, "evidence": row.evidence,
    }


def _decode(content: str) -> bytes:
    try:
        return base64.b64decode(content, validate=True)
    except (ValueError, TypeError):
        raise Invalid("上传内容不是有效的文件") from None


def _require_rows(checked: Checked) -> None:
    if not checked.rows:
        raise Invalid("文件中没有数据行")


def _result(data: bytes, checked: Checked, rows: list[dict[str, Any]]) -> dict[str, Any]:
    errors = sorted(checked.errors, key=lambda e: (e.row, e.column))
    return {
        "ok": not errors,
        "count": len(checked.rows),
        "rows": rows,
        "error_count": len(errors),
        "error_rows": len(checked.bad_rows),
        "errors": [_error_dict(e) for e in errors[:MAX_LISTED_ERRORS]],
        "annotated": _b64(annotate(data, columns(), errors)) if errors else None,
    }
