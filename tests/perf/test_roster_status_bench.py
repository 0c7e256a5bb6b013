"""Benchmarks of roster's bulk status steps (issue 5), each beside a raw SQL UPDATE of the same
rows in the same run (`make bench`; size `XUEJI_BENCH_STATUS_STUDENTS`, default 10,000):

- the 1 August grade promotion (`calendar_jobs.run("promotion")`: plan, conditional updates,
  run record, audit) vs `UPDATE students SET grade = grade + 1` over the same rows;
- a batch graduation from an Excel sheet (`batch_changes.apply_status_batch`: every cell
  checked, a status change, an outbox event and a chained audit entry per student) vs
  `UPDATE students SET status = 'graduated'` over the same rows.

Both back ends (SQLite file, PostgreSQL).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, text

from services.common.caller import Caller, Scope
from services.common.db import Database
from services.common.models import OutboxMessage
from services.common.sheets import export
from services.roster import batch_changes, calendar_jobs
from services.roster.adapters.orm import OrgUnit, Student

pytestmark = pytest.mark.perf

N = int(os.environ.get("XUEJI_BENCH_STATUS_STUDENTS", "10000"))
ACADEMIC = Caller("1000007", "1000007", "academic_affairs", Scope("institution"))
REGISTRAR = Caller("1000001", "1000001", "student_affairs", Scope("institution"))
PER_CLASS = 40


def seed(db: Database, entry_year: int) -> list[str]:
    """N enrolled students of one entry year (R6 numbers: 40 per class, 90 classes per major),
    grade NULL (from the entry year)."""
    now = datetime.now(UTC)
    classes = (N + PER_CLASS - 1) // PER_CLASS
    majors = (classes + 89) // 90
    units = [{"code": "01", "name": "计算机学院", "kind": "college", "parent_code": None}]
    units += [{"code": f"01{m:02d}", "name": f"专业{m}", "kind": "major", "parent_code": "01"}
              for m in range(1, majors + 1)]
    units += [{"code": class_code(entry_year, c), "name": f"班{c}", "kind": "class",
               "parent_code": f"01{c // 90 + 1:02d}"} for c in range(classes)]
    rows = [{"student_number": f"{class_code(entry_year, i // PER_CLASS)}{i % PER_CLASS + 1:02d}",
             "name": f"学生{i:05d}", "gender": "1" if i % 2 else "2", "college_code": "01",
             "class_code": class_code(entry_year, i // PER_CLASS), "status": "enrolled", "program_years": "4",
             "entry_month": f"{entry_year}-09", "created_at": now, "updated_at": now} for i in range(N)]
    with db.transaction() as s:
        s.execute(insert(OrgUnit), units)
        s.execute(insert(Student), rows)
    return [r["student_number"] for r in rows]


def class_code(entry_year: int, index: int) -> str:
    return f"{entry_year}01{index // 90 + 1:02d}{index % 90 + 1:02d}"


def timed(work: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def raw(db: Database, sql: str, numbers: list[str]) -> float:
    """One UPDATE per 1,000 numbers (the use cases' chunk), nothing else."""
    def work() -> None:
        with db.transaction() as s:
            for i in range(0, len(numbers), 1000):
                s.execute(text(sql.format(ids=",".join(f"'{n}'" for n in numbers[i:i + 1000]))))
    return timed(work)[0]


def report(what: str, seconds: float, baseline: float, backend: str) -> None:
    print(f"\n{what} [{backend}] {N} students: {seconds:.2f} s ({N / seconds:,.0f}/s); "
          f"raw SQL UPDATE {baseline:.3f} s ({N / baseline:,.0f}/s); ratio {baseline / seconds:.3f}")


def test_promotion_beside_raw_update(migrated_db: Callable[[str], Database], db_backend: str) -> None:
    db = migrated_db("roster")
    numbers = seed(db, 2024)
    baseline = raw(db, "UPDATE students SET grade = COALESCE(grade, 2) + 1 WHERE student_number IN ({ids})", numbers)
    with db.transaction() as s:  # back as before: grade from the entry year
        s.execute(text("UPDATE students SET grade = NULL"))
    seconds, result = timed(lambda: calendar_jobs.run(db, REGISTRAR, "promotion", on="2026-08-01"))
    assert isinstance(result, dict) and result["affected"] == N
    with db.reading() as s:
        assert s.scalar(select(func.count()).where(Student.grade == 3)) == N  # 2024 intake: 2nd year → 3rd
    report("1 August promotion", seconds, baseline, db_backend)


def test_batch_graduation_beside_raw_update(migrated_db: Callable[[str], Database], db_backend: str) -> None:
    db = migrated_db("roster")
    numbers = seed(db, 2022)
    with db.reading() as s:
        names = dict(s.execute(select(Student.student_number, Student.name)).all())
    rows = [{"student_number": n, "name": names[n], "kind": "毕业", "effective_on": "2026-07-01",
             "reason": "修满学分，准予毕业", "evidence": "教务〔2026〕88号"} for n in numbers]
    content = base64.b64encode(export(batch_changes.columns(), rows, "学籍异动")).decode()
    baseline = raw(db, "UPDATE students SET status = 'graduated' WHERE student_number IN ({ids})", numbers)
    with db.transaction() as s:
        s.execute(text("UPDATE students SET status = 'enrolled'"))
    seconds, result = timed(lambda: batch_changes.apply_status_batch(db, ACADEMIC, content))
    assert isinstance(result, dict) and result["ok"], result.get("errors") if isinstance(result, dict) else result
    with db.reading() as s:
        assert s.scalar(select(func.count()).where(Student.status == "graduated")) == N
        assert s.scalar(select(func.count()).where(OutboxMessage.event_type == "student.status_changed")) == N
    report("batch graduation (Excel)", seconds, baseline, db_backend)
