"""Benchmark of aid (`make bench`): identification + allocation for `XUEJI_BENCH_AID_APPLICATIONS`
(default 30,000) applications, and the national-template export, beside raw baselines in the same run.

- identification: `registers.identify_many` (every row's rules, enrolment and scope checked, stored, audited);
- allocation: `applications.review_many` at the counselor step (eligibility re-checked, one quota place taken
  per application from class, college and programme by conditional UPDATEs, review + audit rows);
  the pure domain rules for the same applications (eligibility + quota room) give the floor;
- export: `reporting.national_export` (query, the template's checks per cell, `sheets.export`) beside
  openpyxl write-only of the same rows as bare values.
Run on SQLite by default; `XUEJI_BENCH_AID_DB=postgresql` for PostgreSQL.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from openpyxl import Workbook

from services.aid import applications, registers, reporting
from services.aid.adapters.orm import Application, Review, Student
from services.aid.domain import national, needy, quotas, review
from services.aid.domain.programmes import DEFAULT_PROGRAMMES, Applicant, refusals
from services.aid.tests.factories import id_number
from services.common.caller import system_caller
from services.common.db import Database

pytestmark = [pytest.mark.perf, pytest.mark.timeout(3600)]

COUNT = int(os.environ.get("XUEJI_BENCH_AID_APPLICATIONS", "30000"))
YEAR = "2026-2027"
CALLER = system_caller("bench")
LEVELS = ("特别困难", "困难", "一般困难")
PER_CLASS = 50


@pytest.fixture
def db_backend() -> str:
    return os.environ.get("XUEJI_BENCH_AID_DB", "sqlite")


def _students(count: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        college = f"{i // 5000 + 1:02d}"
        klass = f"2025{college}{i // PER_CLASS % 100 + 1:02d}{i // (PER_CLASS * 100) % 100:02d}"
        rows.append({"student_number": f"{klass}{i % PER_CLASS + 1:02d}", "name": f"学生{i:05d}", "gender": "1",
                     "college_code": college, "class_code": klass, "status": "enrolled", "left": False,
                     "stop_instalments": False, "updated_at": datetime.now(UTC), "last_change_id": None})
    return rows


def _timed(step: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = step()
    return time.perf_counter() - start, result


def test_identification_allocation_and_export(migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("aid")
    students = _students(COUNT)
    with db.transaction() as s:
        s.bulk_insert_mappings(Student, students)
    identifications = [{"student_number": st["student_number"], "academic_year": YEAR,
                        "level": LEVELS[i % 3], "reasons": "家庭经济困难", "evidence": [f"证明{i}"],
                        "flags": ["低保"] if i % 10 == 0 else [], "id_number": id_number(i % 1000),
                        "income_per_capita": 3000 + i % 5000} for i, st in enumerate(students)]

    # 1. identification
    t_identify, _ = _timed(lambda: [registers.identify_many(db, CALLER, identifications[i:i + 5000])
                                    for i in range(0, COUNT, 5000)])

    # quotas for 90% of each class (so some approvals are refused), applications as students submit them
    classes: dict[str, list[dict[str, Any]]] = {}
    for st in students:
        classes.setdefault(st["class_code"], []).append(st)
    per_class = int(PER_CLASS * 0.9)
    colleges = sorted({st["college_code"] for st in students})
    registers.allocate_quota(db, CALLER, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "programme",
                                          "places": COUNT})
    for college in colleges:
        n = sum(1 for c in classes if c[4:6] == college)
        registers.allocate_quota(db, CALLER, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "college",
                                              "college_code": college, "places": n * per_class})
    for klass in classes:
        registers.allocate_quota(db, CALLER, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "class",
                                              "class_code": klass, "college_code": klass[4:6], "places": per_class})
    now = datetime.now(UTC)
    amounts = {"特别困难": 4400, "困难": 3700, "一般困难": 3000}
    with db.transaction() as s:
        s.bulk_insert_mappings(Application, [
            {"student_number": st["student_number"], "college_code": st["college_code"],
             "class_code": st["class_code"], "programme_code": "GJZXJ", "academic_year": YEAR,
             "requested_amount": None, "amount": amounts[LEVELS[i % 3]], "rank_percent": None, "statement": "申请",
             "status": review.APPLIED, "quota_taken": False, "collected_by": st["student_number"],
             "collected_role": "student", "created_at": now, "updated_at": now} for i, st in enumerate(students)])
        ids = [i for (i,) in s.query(Application.id).order_by(Application.id)]
        s.bulk_insert_mappings(Review, [{"application_id": i, "step": review.APPLIED, "decision": "submit",
                                         "reason": "", "reviewer": "x", "reviewer_role": "student", "at": now}
                                        for i in ids])

    # the floor: the same rules in plain Python, no database
    programme = {p.code: p for p in DEFAULT_PROGRAMMES}["GJZXJ"]
    levels = needy.Levels()

    def domain_only() -> int:
        room = {k: quotas.Quota(quotas.CLASS, k, per_class) for k in classes}
        granted = 0
        for i, st in enumerate(students):
            level = LEVELS[i % 3]
            needy.validate(needy.Assessment(st["student_number"], YEAR, level, "x", ("e",)), levels)
            applicant = Applicant(True, needy.year_of_study(st["class_code"], st["student_number"], YEAR), level)
            q = room[st["class_code"]]
            if not refusals(programme, applicant, levels) and quotas.has_room(q, 0):
                room[st["class_code"]] = quotas.Quota(q.level, q.unit_code, q.places, None, q.used_places + 1)
                granted += 1
        return granted

    t_domain, granted_domain = _timed(domain_only)

    # 2. allocation at the counselor step, in batches as reviewers submit them
    def allocate() -> tuple[int, int]:
        done = refused = 0
        for i in range(0, len(ids), 5000):
            result = applications.review_many(db, CALLER, ids[i:i + 5000], "approve")
            done, refused = done + result["done"], refused + len(result["refused"])
        return done, refused

    t_allocate, (done, refused) = _timed(allocate)
    expected = len(classes) * per_class
    assert (done, refused) == (expected, COUNT - expected) and granted_domain == expected

    # 3. the national template export (family economic information) vs raw openpyxl
    t_export, exported = _timed(lambda: reporting.national_export(db, CALLER, national.FAMILY, YEAR))
    assert exported["ok"] and exported["rows"] == COUNT, exported["errors"][:3]
    with db.reading() as s:
        rows = reporting.report_rows(s, national.FAMILY, YEAR)

    def raw() -> bytes:
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("raw")
        ws.append([c.header for c in national.FAMILY_COLUMNS])
        for r in rows:
            ws.append([r[c.key] for c in national.FAMILY_COLUMNS])
        out = io.BytesIO()
        wb.save(out)
        return out.getvalue()

    t_raw, raw_bytes = _timed(raw)
    t_checks, errors = _timed(lambda: national.validate_rows(national.FAMILY, rows, levels))
    assert errors == []
    size = len(base64.b64decode(exported["file"]))

    print(f"\naid bench ({db.url.split(':')[0]}, {COUNT} applications, {len(classes)} classes):")
    print(f"  identification (identify_many)       {t_identify:7.2f} s  {COUNT / t_identify:8.0f} rows/s")
    print(f"  allocation (review_many, counselor)  {t_allocate:7.2f} s  {COUNT / t_allocate:8.0f} apps/s "
          f"({done} approved, {refused} refused: quota used up)")
    print(f"  same rules, plain Python (floor)     {t_domain:7.2f} s  {COUNT / t_domain:8.0f} apps/s")
    print(f"  national export (checks + sheets)    {t_export:7.2f} s  {size / 1e6:.1f} MB")
    print(f"    of which template checks           {t_checks:7.2f} s")
    print(f"  raw openpyxl write-only, same rows   {t_raw:7.2f} s  {len(raw_bytes) / 1e6:.1f} MB  "
          f"(export / raw = {t_export / t_raw:.1f}×)")
