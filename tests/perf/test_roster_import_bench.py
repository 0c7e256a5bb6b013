"""Benchmark of the roster's Excel import and export (`make bench`), each beside raw parsers
and a raw writer measured on the same file in the same run.

A generated workbook of `XUEJI_BENCH_ROSTER_ROWS` (default 50,000) students × 70 columns
(the template's columns plus filler columns the import ignores but must still parse):

- raw parse: openpyxl read-only (values only) and python-calamine, no checks;
- import: parse + every cell checked + register checks + store (students, outbox events,
  chained audit entries) through `importing.import_students`;
- export of the same students in the import layout vs openpyxl write-only of bare values.

Peak memory is the rise of the process's resident high-water mark (reset before each step
through /proc/self/clear_refs), so C allocations (lxml, calamine) count too.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from services.common.caller import system_caller
from services.common.db import Database
from services.roster import handlers, importing
from services.roster.domain.codes import CodeBook
from services.roster.tests.factories import national_id

pytestmark = [pytest.mark.perf, pytest.mark.timeout(3600)]

ROWS = int(os.environ.get("XUEJI_BENCH_ROSTER_ROWS", "50000"))
WIDTH = 70
CALLER = system_caller("bench")
DIGITS = "零一二三四五六七八九"


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def measured(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak MB above the resident size at the start)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    base = _rss_kb("VmRSS:")
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return result, seconds, max(0, _rss_kb("VmHWM:") - base) / 1024


def classes() -> list[str]:
    return [f"2026{c:02d}{m:02d}{k:02d}" for c in range(1, 11) for m in range(1, 6) for k in range(1, 21)]


def org_units() -> list[dict[str, Any]]:
    units = [{"code": f"{c:02d}", "name": f"学院{c:02d}", "kind": "college"} for c in range(1, 11)]
    units += [{"code": f"{c:02d}{m:02d}", "name": f"专业{c:02d}{m:02d}", "kind": "major", "parent_code": f"{c:02d}"}
              for c in range(1, 11) for m in range(1, 6)]
    units += [{"code": k, "name": f"班级{k}", "kind": "class", "parent_code": k[4:8]} for k in classes()]
    return units


def generated_rows(n: int) -> list[dict[str, Any]]:
    klasses = classes()
    rows = []
    for i in range(n):
        klass = klasses[i // 50 % len(klasses)]
        born = date(2007, 1, 1) + timedelta(days=i % 3000)
        male = i % 2 == 0
        rows.append({
            "student_number": f"{klass}{i % 50 + 1:02d}" if i < 50 * len(klasses) else f"{klass}{i % 50 + 51:02d}",
            "exam_number": f"26110101{i:06d}", "name": "新生" + "".join(DIGITS[int(d)] for d in str(i)),
            "gender": "男" if male else "女", "birth_date": born, "id_type": "居民身份证",
            "national_id": national_id(born, "1" if male else "2", seq=i // 3000),
            "ethnicity": "汉族" if i % 7 else "回族", "political_status": "中国共产主义青年团团员",
            "native_place": "110101", "birthplace": "110105", "household_division": "110108",
            "household_type": "非农业户口", "hmt_overseas": "否", "health": "健康或良好", "entry_month": "2026-09",
            "entry_mode": "普通入学", "study_mode": "住校", "student_source": "正常入学", "class_code": klass,
            "major_code": klass[4:8], "level": "本科", "program_years": "4", "study_form": "普通全日制",
            "expected_graduation": date(2030, 6, 30), "phone": f"138{i:08d}", "email": f"s{i}@example.edu.cn",
            "postcode": "100871", "address": "北京市海淀区颐和园路5号", "home_address": "北京市东城区某街道某号",
            "mailing_address": "北京市海淀区颐和园路5号", "guardian1_name": "家长", "guardian1_relation": "父亲",
            "guardian1_id_type": "居民身份证",
            "guardian1_id_number": national_id(date(1975, 1, 1) + timedelta(days=i % 3000), "1", seq=i // 3000),
            "guardian1_phone": f"139{i:08d}", "guardian2_name": "家长", "guardian2_relation": "母亲",
            "guardian2_id_type": "居民身份证",
            "guardian2_id_number": national_id(date(1976, 1, 1) + timedelta(days=i % 3000), "2", seq=i // 3000),
            "guardian2_phone": f"137{i:08d}",
            **{f"filler{j}": f"备注{j}-{i}" for j in range(WIDTH)},
        })
    return rows


def workbook(rows: list[dict[str, Any]]) -> bytes:
    """The template's headers plus filler columns; values written plain (quicker than the styled export)."""
    cols = importing.columns(CodeBook.standard())
    keys = [c.key for c in cols] + [f"filler{j}" for j in range(WIDTH - len(cols))]
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("学生信息")
    ws.append([c.header for c in cols] + [f"备注{j:02d}" for j in range(WIDTH - len(cols))])
    for row in rows:
        ws.append([row.get(k) for k in keys])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def parse_openpyxl(data: bytes) -> int:
    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    count = sum(1 for _ in wb.worksheets[0].iter_rows(values_only=True))
    wb.close()
    return count


def parse_calamine(data: bytes) -> int:
    from python_calamine import CalamineWorkbook

    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
    return sum(1 for _ in sheet.iter_rows())


def write_raw(rows: list[list[Any]]) -> int:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("raw")
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return len(buffer.getvalue())


def test_roster_import_and_export(migrated_db: Callable[[str], Database], db_backend: str) -> None:
    db = migrated_db("roster")
    handlers.upsert_org_units(db, CALLER, org_units())
    data, gen_s, _ = measured(lambda: workbook(generated_rows(ROWS)))
    content = base64.b64encode(data).decode()

    lines = [f"roster import/export bench ({db_backend}): {ROWS} rows × {WIDTH} columns, "
             f"{len(data) / 1e6:.1f} MB file (generated in {gen_s:.1f} s)"]
    parsed, raw_s, raw_mb = measured(lambda: parse_openpyxl(data))
    assert parsed == ROWS + 1
    lines.append(f"  raw parse openpyxl read-only : {raw_s:7.2f} s  peak +{raw_mb:6.0f} MB")
    fastest = raw_s
    try:
        cal, cal_s, cal_mb = measured(lambda: parse_calamine(data))
        assert cal == ROWS + 1
        lines.append(f"  raw parse python-calamine    : {cal_s:7.2f} s  peak +{cal_mb:6.0f} MB")
        fastest = min(fastest, cal_s)
    except ImportError:
        lines.append("  raw parse python-calamine    : not installed")

    result, imp_s, imp_mb = measured(lambda: importing.import_students(db, CALLER, content))
    assert result["ok"], result["errors"][:5]
    assert result["imported"] == ROWS
    lines.append(f"  import (parse+check+store)   : {imp_s:7.2f} s  peak +{imp_mb:6.0f} MB  "
                 f"({ROWS / imp_s:,.0f} rows/s; {imp_s / fastest:.1f}× fastest raw parse; goal ≤ 3×, < 500 MB)")

    exported, exp_s, exp_mb = measured(lambda: importing.export_students(db, CALLER))
    assert exported["count"] == ROWS
    cols = importing.columns(CodeBook.standard())
    bare = [[f"v{i}-{j}" for j in range(len(cols) + 2)] for i in range(ROWS)]
    _, raw_w_s, _ = measured(lambda: write_raw(bare))
    lines.append(f"  export (query+labels+write)  : {exp_s:7.2f} s  peak +{exp_mb:6.0f} MB  "
                 f"beside raw openpyxl write-only of bare values {raw_w_s:.2f} s")
    print("\n" + "\n".join(lines))
