"""The long fault suite's fixtures (private broker and PostgreSQL) and its printed table.

Each scenario of `test_graduation_faults.py` records one row (`report.record`: fault,
events, lost, doubled, time to recover); the table is printed at the end of the session
and kept in `var/fault-report.txt`.
"""

from __future__ import annotations

from typing import Any

from tests.fault.private_infra import private_broker, private_postgres  # noqa: F401 - fixtures
from tests.fault.report import REPORT, ROWS, report_text


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    terminalreporter.write_sep("=", "fault suite: graduation under faults")
    terminalreporter.write_line(report_text())
    terminalreporter.write_line(f"(kept in {REPORT})")
