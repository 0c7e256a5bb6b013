"""The fault suite's table: one row per scenario, printed at the end and kept in var/fault-report.txt.

The file is rewritten after every scenario, so a run stopped half-way still leaves the
rows it measured.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REPORT = Path(os.environ.get("XUEJI_FAULT_REPORT", ROOT / "var" / "fault-report.txt"))
COLUMNS = ("fault", "db", "events", "done at fault", "lost", "doubled", "dead letters", "recover s", "scenario s")

# Filled by the scenarios of this session, in the order they ran.
ROWS: list[dict[str, Any]] = []


def table(rows: list[dict[str, Any]]) -> str:
    cells = [COLUMNS] + [tuple(str(row[c]) for c in COLUMNS) for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]

    def line(r: tuple[str, ...]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def report_text() -> str:
    return f"xueji fault suite, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n{table(ROWS)}\n"


def record(row: dict[str, Any]) -> None:
    ROWS.append(row)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(report_text(), encoding="utf-8")
