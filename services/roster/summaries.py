"""Counts for the home page and the dashboard (issue 9), each limited to the caller's scope.

`home_counts` answers only the items the caller's role acts on, so the gateway's home page
never learns numbers outside what the role may open. `status_change_counts` and
`status_changes` share one definition of a row's month and kind: the chart's bar and the
list behind it count the same rows.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.sql.elements import ColumnElement

from services.common.caller import (
    ACADEMIC_AFFAIRS,
    AUTHORITY,
    COUNSELOR,
    DEPUTY_SECRETARY,
    STUDENT,
    STUDENT_AFFAIRS,
    Caller,
)
from services.common.db import Database
from services.common.errors import Invalid
from services.roster.adapters.orm import (
    ChangeRequest,
    ClearanceEvent,
    PendingGraduation,
    ProblemRecord,
    StatusApplication,
    StatusChange,
    Student,
)
from services.roster.clearance import OPEN_STATES
from services.roster.domain import policy as pol
from services.roster.domain import status as st
from services.roster.domain import transitions as tr
from services.roster.handlers import _scope_filter

CHART_READERS = (COUNSELOR, DEPUTY_SECRETARY, ACADEMIC_AFFAIRS, STUDENT_AFFAIRS, AUTHORITY)
OFFICES = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
SCOPED_STAFF = (COUNSELOR, DEPUTY_SECRETARY, ACADEMIC_AFFAIRS, STUDENT_AFFAIRS)
REVOCATION = "revoke"  # the kind key of a revocation (its row has no kind of its own)
MAX_MONTHS = 36
MAX_PER_PAGE = 100
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _count(s: Any, query: Any) -> int:
    return int(s.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _scoped(query: Any, caller: Caller) -> Any:
    scope = _scope_filter(caller)
    return query if scope is None else query.where(scope)


def _requests_in_scope(query: Any, caller: Caller) -> Any:
    """Change requests carry the student's college and class as filed (as `list_change_requests`)."""
    if caller.is_system() or caller.scope.kind == "institution":
        return query
    column = {"college": ChangeRequest.college_code, "classes": ChangeRequest.class_code,
              "self": ChangeRequest.student_number}.get(caller.scope.kind)
    return query.where(column.in_(caller.scope.ids) if column is not None else ChangeRequest.id.is_(None))


def home_counts(db: Database, caller: Caller) -> dict[str, int]:
    """What waits for the caller's action in roster, by item key; only the keys the role acts on."""
    role = caller.role
    out: dict[str, int] = {}
    with db.reading() as s:
        waiting = sorted(state for state in (pol.PENDING_COUNSELOR, pol.PENDING_FINAL)
                         if role in pol.reviewer_roles(state))
        if waiting:
            out["change_requests"] = _count(s, _requests_in_scope(
                select(ChangeRequest.id).where(ChangeRequest.state.in_(waiting),
                                               ChangeRequest.requested_by != caller.username), caller))
        if role == STUDENT:
            out["own_change_requests"] = _count(s, _requests_in_scope(
                select(ChangeRequest.id).where(ChangeRequest.state.in_((pol.PENDING_COUNSELOR, pol.PENDING_FINAL))),
                caller))
        if role in OFFICES:
            out["problem_records"] = _count(s, select(ProblemRecord.id).where(ProblemRecord.state == "open"))
            out["clearance_problems"] = _count(s, select(ClearanceEvent.id)
                                               .where(ClearanceEvent.state.in_(OPEN_STATES)))
        if role in (AUTHORITY, *OFFICES):
            out["status_applications"] = _count(s, select(StatusApplication.id)
                                                .where(StatusApplication.state == "pending"))
        if role in SCOPED_STAFF:
            out["suspected_dropouts"] = _count(s, _scoped(
                select(Student.student_number).where(Student.status.in_((st.SUSPECTED_DROPOUT, st.DROPOUT))),
                caller))
            out["pending_graduations"] = _count(s, _scoped(
                select(PendingGraduation.id)
                .join(Student, Student.student_number == PendingGraduation.student_number)
                .where(PendingGraduation.state == "open"), caller))
    return out


# ---- status changes per month and kind ---------------------------------------------------------


def _month_start(month: str) -> datetime:
    if not isinstance(month, str) or not MONTH.match(month):
        raise Invalid("月份格式应为 yyyy-mm")
    year, mon = int(month[:4]), int(month[5:])
    return datetime(year, mon, 1, tzinfo=UTC)


def _add_months(start: datetime, n: int) -> datetime:
    index = start.year * 12 + start.month - 1 + n
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def kind_key(kind: str | None, revokes: int | None, new_status: str) -> str:
    """A change's kind for counting: its kind, a revocation, or (older rows) the status it set."""
    return kind or (REVOCATION if revokes else new_status)


def kind_key_label(key: str) -> str:
    if key == REVOCATION:
        return "撤销"
    return tr.kind_label(key) or st.label(key)


def _kind_filter(key: str) -> ColumnElement[bool]:
    if key == REVOCATION:
        return and_(StatusChange.kind.is_(None), StatusChange.revokes_change_id.is_not(None))
    if tr.kind_label(key):
        return StatusChange.kind == key
    return and_(StatusChange.kind.is_(None), StatusChange.revokes_change_id.is_(None),
                StatusChange.new_status == key)


def _month_of(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return moment.astimezone(UTC).strftime("%Y-%m")


def status_change_counts(db: Database, caller: Caller, months: int = 12, until: str = "") -> dict[str, Any]:
    """学籍异动 per month (of the effective date) and kind over `months` months ending with `until`
    (default: this month), for students in the caller's scope."""
    caller.require_role(*CHART_READERS)
    if not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise Invalid(f"月数应在 1 到 {MAX_MONTHS} 之间")
    last = _month_start(until) if until else _month_start(date.today().strftime("%Y-%m"))
    start, end = _add_months(last, 1 - months), _add_months(last, 1)
    query = _scoped(select(StatusChange.kind, StatusChange.revokes_change_id, StatusChange.new_status,
                           StatusChange.effective_at)
                    .join(Student, Student.student_number == StatusChange.student_number)
                    .where(StatusChange.effective_at >= start, StatusChange.effective_at < end), caller)
    counts: dict[tuple[str, str], int] = {}
    with db.reading() as s:
        for kind, revokes, new_status, at in s.execute(query):
            key = (_month_of(at), kind_key(kind, revokes, new_status))
            counts[key] = counts.get(key, 0) + 1
    month_list = [_add_months(start, i).strftime("%Y-%m") for i in range(months)]
    kinds = sorted({k for _, k in counts})
    return {"months": month_list,
            "kinds": [{"kind": k, "label": kind_key_label(k)} for k in kinds],
            "rows": [{"month": m, "kind": k, "kind_label": kind_key_label(k), "count": n}
                     for (m, k), n in sorted(counts.items())],
            "total": sum(counts.values())}


def status_changes(db: Database, caller: Caller, month: str, kind: str = "", page: int = 1,
                   per_page: int = 20) -> dict[str, Any]:
    """The changes behind one bar of `status_change_counts`: that month (and kind), in scope."""
    caller.require_role(*CHART_READERS)
    if not isinstance(page, int) or not isinstance(per_page, int) or page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise Invalid(f"分页参数无效：page ≥ 1，1 ≤ per_page ≤ {MAX_PER_PAGE}")
    start = _month_start(month)
    query = _scoped(select(StatusChange, Student.name, Student.class_code)
                    .join(Student, Student.student_number == StatusChange.student_number)
                    .where(StatusChange.effective_at >= start, StatusChange.effective_at < _add_months(start, 1)),
                    caller)
    if kind:
        if len(kind) > 32:
            raise Invalid("异动类型无效")
        query = query.where(_kind_filter(kind))
    with db.reading() as s:
        total = _count(s, query)
        rows = s.execute(query.order_by(StatusChange.effective_at, StatusChange.id)
                         .offset((page - 1) * per_page).limit(per_page)).all()
        items = [{"id": c.id, "student_number": c.student_number, "name": name, "class_code": class_code,
                  "kind": kind_key(c.kind, c.revokes_change_id, c.new_status),
                  "kind_label": kind_key_label(kind_key(c.kind, c.revokes_change_id, c.new_status)),
                  "old_label": st.label(c.old_status), "new_label": st.label(c.new_status), "reason": c.reason,
                  "effective_on": _day(c.effective_at), "actor": c.actor_id} for c, name, class_code in rows]
    return {"month": month, "kind": kind, "kind_label": kind_key_label(kind) if kind else "",
            "items": items, "total": total, "page": page, "per_page": per_page}


def _day(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date().isoformat()

