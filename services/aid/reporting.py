"""National reporting (A4): rows in the national templates' layout, their checks, export, submission, diff;
and the summary the report charts draw."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.aid import access
from services.aid.adapters.orm import Application, Award, NeedyRecord, Review, Student, Submission
from services.aid.domain import national, needy, review
from services.aid.registers import programmes_in
from services.common import sheets
from services.common.audit import audit
from services.common.caller import AID_OPERATOR, Caller
from services.common.db import Database
from services.common.errors import Conflict


def report_rows(s: Session, kind: str, academic_year: str) -> list[dict[str, Any]]:
    """The rows of a national template for a year, in export order (full ID numbers: the template needs them)."""
    needy.parse_academic_year(academic_year)
    national.template(kind)
    if kind == national.FAMILY:
        stmt = select(NeedyRecord, Student).join(Student, Student.student_number == NeedyRecord.student_number) \
            .where(NeedyRecord.academic_year == academic_year).order_by(NeedyRecord.student_number)
        return [{"student_number": r.student_number, "name": st.name, "id_number": r.id_number,
                 "college": st.college_code, "class_code": st.class_code, "academic_year": r.academic_year,
                 "level": r.level, "identified_on": r.identified_at.date(), "reasons": r.reasons,
                 "flags": r.flags, "income_per_capita": r.income_per_capita} for r, st in s.execute(stmt)]
    programmes = programmes_in(s)
    stmt = select(Award, Student, NeedyRecord).join(Student, Student.student_number == Award.student_number) \
        .outerjoin(NeedyRecord, (NeedyRecord.student_number == Award.student_number)
                   & (NeedyRecord.academic_year == Award.academic_year)) \
        .where(Award.academic_year == academic_year).order_by(Award.student_number, Award.programme_code)
    return [{"student_number": a.student_number, "name": st.name, "id_number": n.id_number if n else "",
             "college": st.college_code, "academic_year": a.academic_year,
             "programme": programmes[a.programme_code].name if a.programme_code in programmes else a.programme_code,
             "amount": a.amount, "awarded_on": a.awarded_on, "payer": a.payer, "level": n.level if n else ""}
            for a, st, n in s.execute(stmt)]


def _last_submission(s: Session, kind: str, academic_year: str) -> Submission | None:
    return s.scalars(select(Submission).where(Submission.kind == kind, Submission.academic_year == academic_year)
                     .order_by(Submission.id.desc()).limit(1)).one_or_none()


def _error_view(e: sheets.CellError) -> dict[str, Any]:
    return {"row": e.row, "column": e.column, "header": e.header, "value": e.value, "message": e.message}


def national_export(db: Database, caller: Caller, kind: str, academic_year: str) -> dict[str, Any]:
    """The template's checks first, reported per cell; the workbook only when every cell passes; the diff
    against the last submission either way. The export itself is audited (A5)."""
    caller.require_role(*access.AID_CENTRE)
    template = national.template(kind)
    with db.transaction() as s:
        rows = report_rows(s, kind, academic_year)
        errors = national.validate_rows(kind, rows, access.levels())
        last = _last_submission(s, kind, academic_year)
        changes = national.diff(kind, json.loads(last.rows) if last else [], rows)
        audit(s, caller, "national.export", f"{kind}/{academic_year}", None,
              {"rows": len(rows), "errors": len(errors), "ok": not errors})
    result: dict[str, Any] = {
        "kind": kind, "title": template.title, "academic_year": academic_year, "rows": len(rows),
        "ok": not errors, "errors": [_error_view(e) for e in errors[:1000]], "error_count": len(errors),
        "diff": changes.to_dict(), "last_submission": None if last is None else
        {"submitted_by": last.submitted_by, "submitted_at": last.submitted_at.isoformat(), "rows": last.row_count},
        "filename": f"{template.title}_{academic_year}.xlsx", "file": None,
    }
    if not errors:
        data = sheets.export(template.columns, rows, template.title)
        result["file"] = base64.b64encode(data).decode("ascii")
    return result


def submit_national(db: Database, caller: Caller, kind: str, academic_year: str) -> dict[str, Any]:
    """Record what is reported to the province (the basis of the next diff); aided applications become 已报送."""
    caller.require_role(AID_OPERATOR)
    national.template(kind)
    with db.transaction() as s:
        rows = report_rows(s, kind, academic_year)
        errors = national.validate_rows(kind, rows, access.levels())
        if errors:
            raise Conflict(f"报表有 {len(errors)} 处未通过模板校验，不能报送")
        now = datetime.now(UTC)
        s.add(Submission(kind=kind, academic_year=academic_year, row_count=len(rows),
                         rows=json.dumps([national.normalised(r) for r in rows], ensure_ascii=False),
                         submitted_by=caller.username, submitted_at=now))
        moved = 0
        if kind == national.AIDED:
            ids = list(s.scalars(select(Application.id).where(Application.academic_year == academic_year,
                                                              Application.status == review.AUDITED)))
            if ids:
                s.execute(update(Application).where(Application.id.in_(ids))
                          .values(status=review.SUBMITTED, updated_at=now)
                          .execution_options(synchronize_session=False))
                s.add_all([Review(application_id=i, step=review.AUDITED, decision="report", reason="",
                                  reviewer=caller.username, reviewer_role=caller.role, at=now) for i in ids])
                moved = len(ids)
        audit(s, caller, "national.submit", f"{kind}/{academic_year}", None,
              {"rows": len(rows), "applications_submitted": moved})
        return {"kind": kind, "academic_year": academic_year, "rows": len(rows), "applications_submitted": moved,
                "submitted_at": now.isoformat()}


def summary(db: Database, caller: Caller, academic_year: str) -> dict[str, Any]:
    """Counts and amounts by college, level and programme (the report page's charts)."""
    caller.require_role(*access.AID_CENTRE)
    needy.parse_academic_year(academic_year)
    with db.transaction() as s:
        programmes = programmes_in(s)
        by_level = s.execute(select(NeedyRecord.level, func.count()).where(NeedyRecord.academic_year == academic_year)
                             .group_by(NeedyRecord.level)).all()
        by_college = s.execute(select(Student.college_code, func.count(), func.sum(Award.amount))
                               .join(Student, Student.student_number == Award.student_number)
                               .where(Award.academic_year == academic_year).group_by(Student.college_code)).all()
        by_programme = s.execute(select(Award.programme_code, func.count(), func.sum(Award.amount))
                                 .where(Award.academic_year == academic_year).group_by(Award.programme_code)).all()
        audit(s, caller, "aid.summary", academic_year)
    return {
        "academic_year": academic_year,
        "by_level": [{"level": lv, "count": n} for lv, n in by_level],
        "by_college": [{"college_code": c, "count": n, "amount": int(a or 0)} for c, n, a in by_college],
        "by_programme": [{"programme_code": p, "programme_name": programmes[p].name if p in programmes else p,
                          "count": n, "amount": int(a or 0)} for p, n, a in by_programme],
    }
