"""R3: provisional numbers (考生号) replaced by issued student numbers in one batch, from the
academic affairs office's mapping sheet (考生号, 学号, 姓名).

Preview checks every row and changes nothing. Apply repeats the checks inside one transaction
(students locked) and, only if every row passes, renames each student in every roster table
keyed by student number (`RENAMED`: found from the metadata, so a table added later is renamed
too), records each change in `number_changes` (old, new, who, when, why, batch), writes one
chained audit entry per student and a summary, and publishes `student.number_changed` v1 per
student through the outbox (identity renames the account; housing, aid and transfer rename their
copies). A row whose student already holds the file's number is "unchanged": applying the same
file again changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column as SqlColumn
from sqlalchemy import Table, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, STUDENT_AFFAIRS, SYSTEM, Caller
from services.common.db import Database
from services.common.envelope import new_event
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.events import StudentNumberChanged
from services.common.outbox import record_event
from services.common.sheets import CellError, Column, annotate, column_letter, read_rows, template
from services.roster.adapters.orm import Base, NumberChange, Student
from services.roster.batch_changes import _decode
from services.roster.domain import number_mapping as nm
from services.roster.handlers import SOURCE, actor_of
from services.roster.importing import CHUNK, MAX_LISTED_ERRORS, _b64, _chunks, _error_dict, _pause

# Student numbers are the academic affairs office's (R3, R6); the student affairs office runs the register.
ROLES = (ACADEMIC_AFFAIRS, STUDENT_AFFAIRS)
KIND_MAPPING = "mapping"
OUTCOME_LABELS = {nm.CHANGE: "换发学号", nm.UNCHANGED: "已换发（无变化）"}


def _renamed_tables() -> list[tuple[Table, SqlColumn]]:
    """Every roster table with a `student_number` column other than `students` itself."""
    found = []
    for table in Base.metadata.sorted_tables:
        if table.name != Student.__tablename__ and "student_number" in table.c:
            found.append((table, table.c.student_number))
    return found


RENAMED = _renamed_tables()

COLUMNS = [
    Column("exam_number", "考生号", required=True, text=True, width=20, note="高考报名号，即该生现用的临时学号"),
    Column("new_number", "学号", required=True, text=True, width=16,
           note="12位：入学年份4位+学院2位+专业2位+班级2位+序号2位，须与该生班级一致"),
    Column("name", "姓名", required=True, width=12, note="须与学籍中的姓名一致"),
]
HEADERS = {c.key: c.header for c in COLUMNS}
LETTERS = {c.key: column_letter(COLUMNS, c.key) for c in COLUMNS}


def read_sheet(data: bytes) -> list[nm.MappingRow]:
    rows = []
    for excel_row, raw in read_rows(data, COLUMNS):
        if excel_row % CHUNK == 0:
            _pause()
        rows.append(nm.MappingRow(excel_row, raw["exam_number"], raw["new_number"], raw["name"]))
    if not rows:
        raise Invalid("文件中没有数据行")
    return rows


def _holder(x: Student) -> nm.Holder:
    return nm.Holder(x.student_number, x.exam_number, x.name, x.college_code, x.class_code)


Good = tuple[nm.MappingRow, Student, str]  # a row without problems, its student and outcome


def _load(s: Session, rows: Sequence[nm.MappingRow], *,
          lock: bool) -> tuple[dict[str, list[Student]], dict[str, Student]]:
    """Students by 考生号 (a provisional one's number is its 考生号) and by the file's new numbers."""
    exams = sorted({r.exam_number for r in rows if r.exam_number})
    news = sorted({r.new_number for r in rows if r.new_number})
    by_exam: dict[str, list[Student]] = {}
    by_number: dict[str, Student] = {}
    for chunk in _chunks(exams, CHUNK):
        query = select(Student).where(or_(Student.exam_number.in_(chunk), Student.student_number.in_(chunk)))
        for x in s.scalars((query.with_for_update() if lock else query).order_by(Student.student_number)):
            by_number[x.student_number] = x
            if x.exam_number:
                by_exam.setdefault(x.exam_number, []).append(x)
    for chunk in _chunks(news, CHUNK):
        query = select(Student).where(Student.student_number.in_(chunk))
        for x in s.scalars((query.with_for_update() if lock else query).order_by(Student.student_number)):
            by_number[x.student_number] = x
    return by_exam, by_number


def _pick(row: nm.MappingRow, candidates: Iterable[Student]) -> Student | None:
    """The student a row's 考生号 names: the one still holding it as number, else the one this file
    already renamed, else the only one with that 考生号."""
    found = list(candidates)
    for x in found:
        if x.student_number == row.exam_number:
            return x
    for x in found:
        if x.student_number == row.new_number:
            return x
    return found[0] if len(found) == 1 else None


def check(s: Session, rows: Sequence[nm.MappingRow], *, lock: bool) -> tuple[list[nm.Problem], list[Good]]:
    """Every problem of the file, and the rows with their student and outcome (those without problems)."""
    problems = nm.cell_problems(rows)
    by_exam, by_number = _load(s, rows, lock=lock)
    good: list[Good] = []
    for row in rows:
        student = _pick(row, by_exam.get(row.exam_number, ()))
        other = by_number.get(row.new_number)
        if other is not None and student is not None and other.student_number == student.student_number:
            other = None
        outcome, found = nm.register_problems(row, _holder(student) if student else None,
                                              _holder(other) if other else None)
        problems.extend(found)
        if student is not None:
            good.append((row, student, outcome))
    bad = {p.excel_row for p in problems}
    return problems, [g for g in good if g[0].excel_row not in bad]


def _cell_errors(problems: Iterable[nm.Problem]) -> list[CellError]:
    return sorted((CellError(p.excel_row, LETTERS[p.key], HEADERS[p.key], p.value, p.message) for p in problems),
                  key=lambda e: (e.row, e.column))


def _view(row: nm.MappingRow, student: Student, outcome: str) -> dict[str, Any]:
    return {"row": row.excel_row, "exam_number": row.exam_number, "old_number": student.student_number
            if outcome == nm.CHANGE else row.exam_number, "new_number": row.new_number, "name": student.name,
            "class_code": student.class_code, "outcome": outcome, "outcome_label": OUTCOME_LABELS[outcome]}


def _result(data: bytes, rows: Sequence[nm.MappingRow], problems: Sequence[nm.Problem],
            views: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    errors = _cell_errors(problems)
    return {
        "ok": not errors, "count": len(rows), "rows": views,
        "changes": sum(1 for v in views if v["outcome"] == nm.CHANGE),
        "unchanged": sum(1 for v in views if v["outcome"] == nm.UNCHANGED),
        "error_count": len(errors), "error_rows": len({e.row for e in errors}),
        "errors": [_error_dict(e) for e in errors[:MAX_LISTED_ERRORS]],
        "annotated": _b64(annotate(data, COLUMNS, errors)) if errors else None,
        **extra,
    }


# ---- use cases -----------------------------------------------------------------------------------


def number_mapping_template(db: Database, caller: Caller) -> dict[str, str]:
    caller.require_role(*ROLES)
    content = template(COLUMNS, "学号对照", {"exam_number": "23110101150123", "new_number": "202301010101",
                                            "name": "张三"})
    return {"filename": "考生号学号对照模板.xlsx", "content": _b64(content)}


def preview_number_mapping(db: Database, caller: Caller, content: str) -> dict[str, Any]:
    """What the file would change, with every problem; changes nothing."""
    caller.require_role(*ROLES)
    data = _decode(content)
    rows = read_sheet(data)
    with db.reading() as s:
        problems, good = check(s, rows, lock=False)
        views = [_view(row, student, outcome) for row, student, outcome in good]
    return _result(data, rows, problems, views)


def apply_number_mapping(db: Database, caller: Caller, content: str, reason: str) -> dict[str, Any]:
    """Every row or, with any error, none (the preview's answer then)."""
    caller.require_role(*ROLES)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("请填写换发学号的依据（如教务处文件号）")
    data = _decode(content)
    rows = read_sheet(data)
    views: list[dict[str, Any]] = []
    renames: list[tuple[Student, str]] = []
    batch_id = ""
    try:
        with db.transaction() as s, s.no_autoflush:
            problems, good = check(s, rows, lock=True)  # a concurrent edit of these students waits for the batch
            if not problems:
                views = [_view(row, student, outcome) for row, student, outcome in good]
                renames = [(student, row.new_number) for row, student, outcome in good if outcome == nm.CHANGE]
                if renames:
                    batch_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(3)
                    _apply(s, caller, renames, reason, batch_id)
    except IntegrityError:
        # Another batch gave one of these numbers after our check (a number nobody holds yet has no
        # row to lock; PostgreSQL lets both checks pass, the unique key stops the second write).
        # Rolled back: nothing of this batch was written.
        raise _taken(db, [new for _, new in renames]) from None
    return _result(data, rows, problems, views, batch_id=batch_id or None)


def _taken(db: Database, numbers: Sequence[str]) -> Conflict:
    with db.reading() as s:
        taken = sorted(n for chunk in _chunks(sorted(numbers), CHUNK) for n in s.scalars(
            select(Student.student_number).where(Student.student_number.in_(chunk))))
    if not taken:  # another unique key (a record changed meanwhile): the same advice holds
        return Conflict("学籍记录已被其他操作修改，本批学号未换发，请刷新后重试", "new_number")
    listed = "、".join(taken[:10]) + (f" 等 {len(taken)} 个" if len(taken) > 10 else "")
    return Conflict(f"新学号 {listed} 已被占用，请刷新后重试（本批学号均未换发）", "new_number")


def _apply(s: Session, caller: Caller, renames: Sequence[tuple[Student, str]], reason: str, batch_id: str) -> None:
    now = datetime.now(UTC)
    s.flush()
    table = Student.__table__
    snapshots = []
    for student, new in renames:
        snapshots.append(({c.key: getattr(student, c.key) for c in table.columns}, new))
        s.expunge(student)  # the rows are rewritten below with plain statements
    for index, chunk in enumerate(_chunks(snapshots, CHUNK)):
        if index:
            _pause()
        mapping = {old["student_number"]: new for old, new in chunk}
        ids = {new: old["national_id"] for old, new in chunk if old["national_id"]}
        # The new row first (ID number held back: it is unique), then every row that refers to the
        # student, then the old row goes; foreign keys hold at every step, on SQLite and PostgreSQL.
        s.execute(insert(table), [{**old, "student_number": new, "national_id": None, "updated_at": now}
                                  for old, new in chunk])
        for child, column in RENAMED:
            s.execute(update(child).where(column.in_(list(mapping)))
                      .values({column.key: case(mapping, value=column, else_=column)}))
        s.execute(delete(table).where(table.c.student_number.in_(list(mapping))))
        if ids:
            s.execute(update(table).where(table.c.student_number.in_(list(ids)))
                      .values(national_id=case(ids, value=table.c.student_number)))
    actor = actor_of(caller)
    for index, (old, new) in enumerate(snapshots, start=1):
        if index % CHUNK == 0:
            s.flush()
            _pause()
        s.add(NumberChange(old_number=old["student_number"], new_number=new, kind=KIND_MAPPING, batch_id=batch_id,
                           reason=reason, actor_id=caller.username, actor_role=caller.role, changed_at=now))
        audit(s, caller, "student.renumber", new, {"student_number": old["student_number"]},
              {"student_number": new, "batch_id": batch_id, "reason": reason}, chain=True)
        national_id = old["national_id"] if old["national_id"] and len(old["national_id"]) <= 18 else None
        record_event(s, new_event(
            "student.number_changed",
            StudentNumberChanged(old_number=old["student_number"], new_number=new, national_id=national_id,
                                 changed_at=now),
            source=SOURCE, actor=actor, correlation_id=caller.correlation_id,
        ))
    audit(s, caller, "student.renumber_batch", batch_id, None,
          {"count": len(snapshots), "reason": reason}, chain=True)


def number_changes(db: Database, caller: Caller, student_number: str) -> dict[str, Any]:
    """A student's number changes, oldest first; a former number leads to the current record."""
    with db.reading() as s:
        current = student_number
        for _ in range(10):  # follow a former number forward (a chain is one or two changes long)
            if s.get(Student, current) is not None:
                break
            later = s.scalars(select(NumberChange.new_number).where(NumberChange.old_number == current)
                              .order_by(NumberChange.id.desc()).limit(1)).first()
            if later is None:
                break
            current = later
        student = s.get(Student, current)
        if student is None:
            if caller.role in (*ROLES, SYSTEM):
                raise NotFound(f"学号 {student_number} 不存在")
            raise Forbidden(f"学生 {student_number} 不在您的数据权限范围内")
        caller.require_student(student.student_number, student.college_code, student.class_code)
        rows: list[NumberChange] = []
        numbers, seen = [current], {current}
        while numbers:  # every change that led to the current number
            found = s.scalars(select(NumberChange).where(NumberChange.new_number.in_(numbers))).all()
            rows.extend(found)
            numbers = [r.old_number for r in found if r.old_number not in seen]
            seen.update(numbers)
        rows.sort(key=lambda r: r.id)
        return {
            "student_number": current,
            "former_numbers": nm.former_numbers({r.new_number: r.old_number for r in rows}, current),
            "changes": [{"old_number": r.old_number, "new_number": r.new_number, "kind": r.kind,
                         "batch_id": r.batch_id, "reason": r.reason, "actor": r.actor_id,
                         "actor_role": r.actor_role, "changed_at": r.changed_at.isoformat()} for r in rows],
        }
