"""Bulk import (R1) and export of student records through the shared spreadsheet toolkit.

Import: the file is parsed and every cell checked outside any transaction (pure work);
then one transaction checks the register in chunks of `CHUNK` (duplicates, existing
records: one query per chunk, not per row) and writes. With any error nothing is written
unless the operator chose "valid rows only"; a row identical to the register is left
alone, so importing the same file twice changes nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common import collector
from services.common.audit import audit, audit_many
from services.common.bulk import copying_behind, insert_rows
from services.common.caller import (
    ACADEMIC_AFFAIRS,
    AUTHORITY,
    COUNSELOR,
    DEPUTY_SECRETARY,
    IT_CENTRE,
    STUDENT_AFFAIRS,
    Caller,
)
from services.common.db import Database
from services.common.envelope import new_event
from services.common.errors import Invalid
from services.common.events import StudentRegistered
from services.common.forked import ChildFailed, Forked
from services.common.outbox import record_event, write_recorded
from services.common.sheets import CellError, Column, Sheet, annotate, column_letter, export, template
from services.roster import problems
from services.roster.adapters.orm import CodeEntry, OrgUnit, Student
from services.roster.domain import duplicates as dup
from services.roster.domain import status as st
from services.roster.domain.codes import CodeBook, CodeEdit
from services.roster.domain.record import FIELD_BY_KEY, FIELDS, GUARDIAN_KEYS, GUARDIAN_SLOTS, check_record
from services.roster.domain.students import mask_national_id
from services.roster.handlers import SEES_FULL_ID, SOURCE, _registered_event, _scope_filter, actor_of

CHUNK = 1000
# Students written per round of COPYs (see _write): few rounds, as each COPY behind costs thread hand-overs.
WRITE_CHUNK = 5000
# Processes checking a big file's rows (1: this one only); files of fewer than 2 × PARALLEL_MIN_ROWS rows use one.
IMPORT_PROCESSES = int(os.environ.get("ROSTER_IMPORT_PROCESSES", "2"))
PARALLEL_MIN_ROWS = 1000
MAX_LISTED_ERRORS = 500
IMPORTERS = (IT_CENTRE, STUDENT_AFFAIRS)
EXPORTERS = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, IT_CENTRE, AUTHORITY, COUNSELOR, DEPUTY_SECRETARY)
# Stored columns a row of the file sets (guardians as JSON); compared to tell "unchanged" rows.
RECORD_KEYS = [f.key for f in FIELDS if not f.key.startswith("guardian")] + ["college_code", "guardians"]
# Shown in exports after the importable columns; read_rows ignores them on the way back in.
EXPORT_EXTRA = (Column("major_name", "专业名称", width=18), Column("status_label", "学籍状态", width=10))
DIFFERS = "学号已存在且信息不同"
log = logging.getLogger(__name__)
Flag = Callable[[int, str, Any, str], None]  # (row, field, value, message): a problem of one row
Plan = list[tuple[str, int, dict[str, Any], Student | None]]  # (insert|update, row, values, current)


def code_book(s: Session) -> CodeBook:
    edits = [CodeEdit(e.table_name, e.code, e.label, e.active) for e in s.scalars(select(CodeEntry))]
    return CodeBook.standard(edits)


def columns(book: CodeBook) -> list[Column]:
    return [
        Column(
            f.key, f.header, required=f.required, note=f.note, text=f.text, width=f.width,
            choices=tuple(book[f.table].choices()) if f.kind == "code" and f.table else (),
        )
        for f in FIELDS
    ]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def import_template(db: Database, caller: Caller) -> dict[str, str]:
    caller.require_role(*IMPORTERS)
    with db.reading() as s:
        book = code_book(s)
    return {"filename": "学生信息导入模板.xlsx", "content": _b64(template(columns(book), "学生信息"))}


def import_students(db: Database, caller: Caller, content: str, valid_only: bool = False,
                    update_existing: bool = False) -> dict[str, Any]:
    """Import a workbook (base64). Returns counts, the errors and, if any, the annotated workbook."""
    caller.require_role(*IMPORTERS)
    with collector.held():
        return _import(db, caller, content, valid_only, update_existing)


def _import(db: Database, caller: Caller, content: str, valid_only: bool, update_existing: bool) -> dict[str, Any]:
    try:
        data = base64.b64decode(content, validate=True)
    except ValueError:
        raise Invalid("上传内容不是有效的文件") from None
    with db.reading() as s:
        book, classes = code_book(s), class_tree(s)
    cols = columns(book)
    letters = {c.key: column_letter(cols, c.key) for c in cols}
    headers = {c.key: c.header for c in cols}
    errors: list[CellError] = []
    bad_rows: set[int] = set()
    warnings: list[dict[str, Any]] = []

    def flag(row: int, key: str, value: Any, message: str) -> None:
        errors.append(CellError(row, letters.get(key, ""), headers.get(key, ""), value, message))
        bad_rows.add(row)

    def warn(row: int, key: str, message: str) -> None:
        warnings.append({"row": row, "column": letters.get(key, ""), "message": message})

    rows = _merged(_sheet_results(Sheet(data, cols), book, classes), flag, warn)
    if not rows and not errors:
        raise Invalid("文件中没有数据行")

    counts = {"imported": 0, "updated": 0, "unchanged": 0}
    with db.transaction() as s:
        plan, suspects = against_register(s, [r for r in rows if r[0] not in bad_rows], flag, counts,
                                          update_existing, f"{DIFFERS}；如需更新请选择“更新已经存在的数据”")
        written = not errors or valid_only
        suspected = 0
        if written:
            _write(s, caller, plan, counts)
            suspected = problems.record_suspects(s, suspects)
            if counts["imported"] or counts["updated"] or suspected:  # a re-import that changes nothing: no trace
                audit(s, caller, "student.import", "students", None,
                      {**counts, "error_rows": len(bad_rows), "valid_only": valid_only,
                       "update_existing": update_existing}, chain=True)
    # Annotated outside the transaction: SQLite would keep other writers waiting meanwhile.
    return {
        "ok": not errors,
        "written": written,
        **counts,
        "suspected_duplicates": suspected,
        "error_count": len(errors),
        "error_rows": len(bad_rows),
        "errors": [_error_dict(e) for e in sorted(errors, key=lambda e: (e.row, e.column))[:MAX_LISTED_ERRORS]],
        "warnings": warnings[:MAX_LISTED_ERRORS],
        "annotated": _b64(annotate(data, cols, errors)) if errors else None,
    }


def register_students(db: Database, caller: Caller, raws: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Register new students from full records sent as data rather than a workbook (seed, test harness,
    single late admissions): the import's checks and storing, all-or-nothing (the Invalid lists every
    row and field). A record identical to the register counts as existing, so sending the same rows
    again changes nothing."""
    caller.require_role(*IMPORTERS)
    if not isinstance(raws, list | tuple) or not all(isinstance(r, Mapping) for r in raws):
        raise Invalid("学生记录应为对象列表", "students")
    with db.reading() as s:
        book, classes = code_book(s), class_tree(s)
    errors: list[tuple[int, str, str]] = []
    warnings: list[dict[str, Any]] = []

    def flag(row: int, key: str, _value: Any, message: str) -> None:
        errors.append((row, key, message))

    def warn(row: int, key: str, message: str) -> None:
        warnings.append({"row": row, "field": key, "message": message})

    rows = checked_rows(enumerate(raws, start=1), book, classes, flag, warn)
    counts = {"imported": 0, "updated": 0, "unchanged": 0}
    if not errors:
        with db.transaction() as s:
            plan, suspects = against_register(s, rows, flag, counts, update_existing=False)
            if not errors:
                _write(s, caller, plan, counts)
                problems.record_suspects(s, suspects)
    if errors:
        raise Invalid(_listing(errors), errors[0][1])
    return {"registered": counts["imported"], "existing": counts["unchanged"],
            "warnings": warnings[:MAX_LISTED_ERRORS]}


def _listing(errors: Sequence[tuple[int, str, str]], shown: int = 20) -> str:
    """第n行 字段：问题; … — in row order, the first `shown` of them."""
    ordered = sorted(set(errors))
    text = "；".join(f"第{row}行 {FIELD_BY_KEY[key].header if key in FIELD_BY_KEY else key}：{message}"
                    for row, key, message in ordered[:shown])
    return text + (f"；等共 {len(ordered)} 处错误" if len(ordered) > shown else "")


def class_tree(s: Session) -> dict[str, str | None]:
    """Class code → its major's code: the org-tree checks of `check_record`."""
    return {u.code: u.parent_code for u in s.scalars(select(OrgUnit).where(OrgUnit.kind == "class"))}


def checked_rows(raws: Iterable[tuple[int, Mapping[str, Any]]], book: CodeBook, classes: Mapping[str, str | None],
                 flag: Flag, warn: Callable[[int, str, str], None]) -> list[tuple[int, dict[str, Any]]]:
    """Every row through `check_record` (pure work, no transaction), a number or ID repeated inside the
    batch flagged on both rows; returns the rows that passed their own checks, ready to store."""
    return _merged(_row_results(raws, book, date.today(), classes or None, pause=True), flag, warn)


# One row's own checks, as `_merged` takes them (picklable: half of a big file's come from a child process):
# (row, errors (field, value, message), warnings (field, message), in-file keys (key, field, value),
# the values to store or None when the row has errors).
RowResult = tuple[int, list[tuple[str, Any, str]], list[tuple[str, str]], list[tuple[str, str, Any]],
                  dict[str, Any] | None]


def _row_results(raws: Iterable[tuple[int, Mapping[str, Any]]], book: CodeBook, today: date,
                 classes: Mapping[str, str | None] | None, pause: bool) -> Iterator[RowResult]:
    for row_no, raw in raws:
        if pause and row_no % CHUNK == 0:
            _pause()
        check = check_record(raw, book, today=today, classes=classes)
        values = check.values
        yield (row_no,
               [(e.field, raw.get(e.field, ""), e.message) for e in check.errors],
               [(w.field, w.message) for w in check.warnings],
               [(key, field, raw.get(field, "")) for key, field in dup.file_keys(values)],
               None if check.errors else _stored(values))


def _merged(results: Iterable[RowResult], flag: Flag, warn: Callable[[int, str, str], None],
            ) -> list[tuple[int, dict[str, Any]]]:
    """Rows' own problems reported, in row order, with a number or ID repeated in the batch flagged on both rows."""
    rows: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}  # duplicate keys inside the batch → first row
    for row_no, errors, warnings, keys, stored in results:
        for field, value, message in errors:
            flag(row_no, field, value, message)
        for field, message in warnings:
            warn(row_no, field, message)
        for key, field, value in keys:
            first = seen.setdefault(key, row_no)
            if first != row_no:
                flag(row_no, field, value, dup.in_file_message(field, first))
                flag(first, field, value, dup.in_file_message(field, row_no))
        if stored is not None:
            rows.append((row_no, stored))
    return rows


def _sheet_results(sheet: Sheet, book: CodeBook, classes: Mapping[str, str | None]) -> Iterable[RowResult]:
    """A workbook's rows checked; a big one's second half in a forked child meanwhile (`IMPORT_PROCESSES`):
    the checks are a quarter of a 50,000-row import, and a second core halves them."""
    today, known = date.today(), classes or None
    half = len(sheet) // 2
    if IMPORT_PROCESSES < 2 or half < PARALLEL_MIN_ROWS:
        return _row_results(sheet.rows(), book, today, known, pause=True)
    try:
        child = Forked(lambda: list(_row_results(sheet.rows(half), book, today, known, pause=False)))
    except OSError:  # no process to be had: the checks go as for a small file
        log.warning("import: fork failed, checking every row here", exc_info=True)
        return _row_results(sheet.rows(), book, today, known, pause=True)
    try:
        first = list(_row_results(sheet.rows(0, half), book, today, known, pause=True))
    except BaseException:
        with suppress(ChildFailed):  # reaped, not left behind
            child.result()
        raise
    try:
        second = child.result()
    except ChildFailed as failure:
        log.warning("import: the second half's checks failed in the child (%s); checking them here", failure)
        second = list(_row_results(sheet.rows(half), book, today, known, pause=True))
    return first + second


def against_register(s: Session, rows: Sequence[tuple[int, dict[str, Any]]], flag: Flag, counts: dict[str, int],
                     update_existing: bool, differs: str = DIFFERS) -> tuple[Plan, list[tuple[str, list[str]]]]:
    """Checked rows against the register, one query per `CHUNK` rows: what to insert or update, rows
    identical to the register counted as unchanged, and R14 suspects (same person without an ID number).
    `differs`: the message for a registered number whose record differs (when not updating)."""
    plan: Plan = []
    suspects: list[tuple[str, list[str]]] = []
    for chunk in _chunks(rows, CHUNK):
        numbers = [v["student_number"] for _, v in chunk]
        ids = [v["national_id"] for _, v in chunk if v["national_id"]]
        # Locked (PostgreSQL): an update's `student.registered` is then made after any other write to the
        # student committed, and consumers keep the newest snapshot by its time.
        existing = {x.student_number: x for x in s.scalars(select(Student).where(
            Student.student_number.in_(numbers)).with_for_update())}
        id_owner = dict(s.execute(select(Student.national_id, Student.student_number).where(
            Student.national_id.in_(ids))).all()) if ids else {}
        suspects.extend(problems.register_suspects(s, [v for _, v in chunk if not v["national_id"]]))
        for row_no, values in chunk:
            number, national_id = values["student_number"], values["national_id"]
            owner = id_owner.get(national_id) if national_id else None
            if owner and owner != number:
                flag(row_no, "national_id", national_id, f"身份证件号与已在册学生 {owner} 重复（R14 问题学籍）")
                continue
            current = existing.get(number)
            if current is None:
                plan.append(("insert", row_no, values, None))
            elif _same(current, values):
                counts["unchanged"] += 1
            elif update_existing:
                plan.append(("update", row_no, values, current))
            else:
                flag(row_no, "student_number", number, differs)
    return plan, suspects


def _write(s: Session, caller: Caller, plan: Plan, counts: dict[str, int]) -> None:
    now = datetime.now(UTC)
    new_rows = []
    for action, _row, values, current in plan:
        if action == "insert":
            values.update(status=st.ENROLLED, created_at=now, updated_at=now)  # the plan's own dict, no copy
            new_rows.append(values)
            continue
        before = _snapshot(current)
        for key in RECORD_KEYS:
            setattr(current, key, values[key])
        current.updated_at = now
        audit(s, caller, "student.update", current.student_number, before, _snapshot(current), chain=True)
        record_event(s, _registered_event(current, caller))  # consumers refresh their copies
        counts["updated"] += 1
    actor = actor_of(caller)
    for chunk in _chunks(new_rows, WRITE_CHUNK):
        # Each COPY runs behind the Python that follows it (PostgreSQL): the students' behind their
        # events, the events' behind the audit entries' JSON, the entries' behind their hashes.
        with copying_behind(s):
            insert_rows(s, Student.__table__, chunk)
            for values in chunk:
                record_event(s, new_event(
                    "student.registered",
                    StudentRegistered(
                        student_number=values["student_number"], name=values["name"], gender=values["gender"],
                        college_code=values["college_code"], class_code=values["class_code"],
                        status=st.ENROLLED, left=False,
                    ),
                    source=SOURCE, actor=actor, correlation_id=caller.correlation_id,
                ))
            write_recorded(s)
            audit_many(s, caller, [("student.register", values["student_number"], None,
                                    {k: values[k] for k in RECORD_KEYS}) for values in chunk], chain=True)
        counts["imported"] += len(chunk)
        _pause()  # after the block: no COPY is running while other green threads have their turn


def _pause() -> None:
    """Let other green threads run during a long import or export (AMQP heartbeats, other RPCs):
    under eventlet's monkey patching time.sleep(0) yields to the hub; elsewhere it costs nothing."""
    time.sleep(0)


_STORED_KEYS = [k for k in RECORD_KEYS if k != "guardians"]
_GUARDIANS = json.JSONEncoder(ensure_ascii=False, sort_keys=True)  # = json.dumps(…), made once


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """A checked record's values as the students table stores them (guardians as JSON)."""
    if list(values) == RECORD_KEYS:  # a checked record holds exactly these, in this order: kept as it is
        stored = values
    else:
        stored = {k: values.get(k) for k in _STORED_KEYS}
    stored["guardians"] = _GUARDIANS.encode(values["guardians"]) if values["guardians"] else None
    return stored


def _same(current: Student, values: dict[str, Any]) -> bool:
    return all(getattr(current, k) == values[k] for k in RECORD_KEYS)


def _snapshot(student: Student) -> dict[str, Any]:
    return {k: getattr(student, k) for k in ("student_number", "name", "gender", "class_code", *RECORD_KEYS)}


def _error_dict(e: CellError) -> dict[str, Any]:
    return {"row": e.row, "column": e.column, "header": e.header, "value": str(e.value or ""), "message": e.message}


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---- export ------------------------------------------------------------------------------------


def export_students(db: Database, caller: Caller, q: str = "", class_code: str = "",
                    status: str = "") -> dict[str, Any]:
    """Every student in scope matching the search (not just one page), in the import layout."""
    caller.require_role(*EXPORTERS)
    full_id = caller.role in SEES_FULL_ID
    query = select(Student)
    scope = _scope_filter(caller)
    if scope is not None:
        query = query.where(scope)
    q = (q or "").strip()
    if q:
        query = query.where(
            (Student.student_number.startswith(q)) | (Student.name.contains(q)) | (Student.national_id == q.upper())
        )
    if class_code:
        query = query.where(Student.class_code == class_code)
    if status:
        query = query.where(Student.status == status)
    with db.reading() as s:  # built outside the write transaction: SQLite would block writers meanwhile
        book = code_book(s)
        names = {u.code: u.name for u in s.scalars(select(OrgUnit))}
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(Student.student_number).execution_options(yield_per=CHUNK))
        content = export([*columns(book), *EXPORT_EXTRA], _export_rows(rows, book, names, full_id), "学生信息")
    with db.transaction() as s:
        audit(s, caller, "student.export", "students", None,
              {"q": q, "class_code": class_code, "status": status, "count": total, "full_id": full_id},
              chain=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return {"filename": f"学生信息_{stamp}.xlsx", "content": _b64(content), "count": total}


def _export_rows(rows: Iterable[Student], book: CodeBook, names: dict[str, str],
                 full_id: bool) -> Iterator[dict[str, Any]]:
    code_fields = [(f.key, book[f.table]) for f in FIELDS if f.kind == "code" and f.table
                   and not f.key.startswith("guardian")]
    for count, student in enumerate(rows, start=1):
        if count % CHUNK == 0:
            _pause()
        row: dict[str, Any] = {k: getattr(student, k) for k in RECORD_KEYS if k != "guardians"}
        for key, table in code_fields:
            row[key] = table.label_of(row[key]) if row[key] else None
        if not full_id:
            row["national_id"] = mask_national_id(row["national_id"])
        guardians = json.loads(student.guardians) if student.guardians else []
        for n, guardian in zip(GUARDIAN_SLOTS, guardians, strict=False):
            for key in GUARDIAN_KEYS:
                value = guardian.get(key)
                if key == "relation":
                    value = book["relation"].label_of(value) if value else None
                elif key == "id_type":
                    value = book["id_type"].label_of(value) if value else None
                elif key == "id_number" and not full_id:
                    value = mask_national_id(value)
                row[f"guardian{n}_{key}"] = value
        row["major_name"] = names.get(student.major_code or "", "")
        row["status_label"] = st.label(student.status)
        yield row
