"""Aid use cases of the registers: needy identification, programmes, quotas, consistency (A1, A2, A5)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.aid import access
from services.aid.adapters.orm import Award, Instalment, NeedyRecord, ProgrammeRow, QuotaRow, Student
from services.aid.domain import consistency, instalments, needy, quotas, registers
from services.aid.domain.programmes import DEFAULT_PROGRAMMES, Programme, programme_problems
from services.common.audit import audit
from services.common.caller import AID_OPERATOR, DEPUTY_SECRETARY, Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound


def _now() -> datetime:
    return datetime.now(UTC)


# ---- needy register -------------------------------------------------------------------------


def needy_view(row: NeedyRecord, student: Student | None, reveal: bool) -> dict[str, Any]:
    return {
        "student_number": row.student_number,
        "name": student.name if student else "",
        "college_code": student.college_code if student else "",
        "class_code": student.class_code if student else "",
        "academic_year": row.academic_year,
        "level": row.level,
        "reasons": row.reasons,
        "evidence": json.loads(row.evidence or "[]"),
        "flags": [f for f in row.flags.split("、") if f],
        "id_number": row.id_number if reveal else needy.mask_id(row.id_number),
        "income_per_capita": row.income_per_capita if reveal else needy.mask_income(row.income_per_capita),
        "masked": not reveal,
        "collected_by": row.collected_by,
        "collected_role": row.collected_role,
        "identified_at": row.identified_at.isoformat(),
    }


def _assessment(data: dict[str, Any]) -> needy.Assessment:
    if not isinstance(data, dict):
        raise Invalid("认定信息格式不正确")
    income = data.get("income_per_capita")
    try:
        income = None if income in (None, "") else int(income)
    except (TypeError, ValueError):
        raise Invalid("家庭人均年收入必须是整数（元）") from None
    return needy.Assessment(
        student_number=str(data.get("student_number", "")).strip(),
        academic_year=str(data.get("academic_year", "")).strip(),
        level=str(data.get("level", "")).strip(),
        reasons=str(data.get("reasons", "")).strip(),
        evidence=needy.clean_list(data.get("evidence") or ()),
        flags=needy.clean_list(data.get("flags") or ()),
        id_number=str(data.get("id_number", "") or "").strip().upper(),
        income_per_capita=income,
    )


def identify_needy(db: Database, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
    """Record (or correct) a student's identification for an academic year; collector is responsible (A3)."""
    assessment = _assessment(data)
    levels = access.levels()
    with db.transaction() as s:
        student = access.student_for(s, caller, assessment.student_number, AID_OPERATOR, *access.SCOPED_STAFF)
        refusal = registers.enrolment_refusal(student.status, student.left)
        if refusal:
            raise Conflict(refusal)  # needy ⊆ enrolled (A1)
        problems = needy.validate(assessment, levels)
        if problems:
            raise Invalid("；".join(problems))
        row = s.scalars(select(NeedyRecord).where(NeedyRecord.student_number == assessment.student_number,
                                                  NeedyRecord.academic_year == assessment.academic_year)
                        ).one_or_none()
        before = None if row is None else needy_view(row, student, reveal=False)
        if row is None:
            row = NeedyRecord(student_number=assessment.student_number, academic_year=assessment.academic_year)
            s.add(row)
        row.level = assessment.level
        row.reasons = assessment.reasons
        row.evidence = json.dumps(list(assessment.evidence), ensure_ascii=False)
        row.flags = "、".join(assessment.flags)
        row.id_number = assessment.id_number or row.id_number or ""
        row.income_per_capita = assessment.income_per_capita
        row.collected_by = caller.username
        row.collected_role = caller.role
        row.identified_at = _now()
        s.flush()
        after = needy_view(row, student, reveal=False)  # the audit log keeps masked values only
        audit(s, caller, "needy.identify", row.student_number, before, after)
        return after


def identify_many(db: Database, caller: Caller, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Record a class or college panel's results at once (导入认定结果): every row checked first (rules,
    enrolment, scope); nothing is saved unless all pass, and each saved row is audited like a single one."""
    if not isinstance(rows, list) or len(rows) > 50000:
        raise Invalid("认定结果须为列表，且不超过 50000 条")
    caller.require_role(AID_OPERATOR, *access.SCOPED_STAFF)
    levels = access.levels()
    assessments = [_assessment(r) for r in rows]
    errors: list[dict[str, Any]] = []
    with db.transaction() as s, s.no_autoflush:
        numbers = sorted({a.student_number for a in assessments})
        students: dict[str, Student] = {}
        existing: dict[tuple[str, str], NeedyRecord] = {}
        for chunk in _chunks(numbers, 500):
            students.update({st.student_number: st for st in s.scalars(
                select(Student).where(Student.student_number.in_(chunk)))})
            existing.update({(r.student_number, r.academic_year): r for r in s.scalars(
                select(NeedyRecord).where(NeedyRecord.student_number.in_(chunk)))})
        for index, a in enumerate(assessments):
            st = students.get(a.student_number)
            if st is None or not caller.scope.covers_student(a.student_number, st.college_code, st.class_code) \
                    and not access.whole_register(caller):
                problems = [f"学生 {a.student_number} 不在在校生库或您的数据权限范围内"]
            else:
                problems = needy.validate(a, levels)
                refusal = registers.enrolment_refusal(st.status, st.left)
                if refusal:
                    problems.append(refusal)
            if problems:
                errors.append({"index": index, "student_number": a.student_number, "message": "；".join(problems)})
        if errors:
            return {"saved": 0, "errors": errors[:1000], "error_count": len(errors)}
        now = _now()
        for a in assessments:
            row = existing.get((a.student_number, a.academic_year))
            before = None if row is None else {"level": row.level, "reasons": row.reasons}
            if row is None:
                row = existing[(a.student_number, a.academic_year)] = NeedyRecord(
                    student_number=a.student_number, academic_year=a.academic_year, id_number="")
                s.add(row)
            row.level, row.reasons = a.level, a.reasons
            row.evidence = json.dumps(list(a.evidence), ensure_ascii=False)
            row.flags = "、".join(a.flags)
            row.id_number = a.id_number or row.id_number or ""
            row.income_per_capita = a.income_per_capita
            row.collected_by, row.collected_role, row.identified_at = caller.username, caller.role, now
            audit(s, caller, "needy.identify", a.student_number, before,
                  {"academic_year": a.academic_year, "level": a.level, "flags": row.flags,
                   "id_number": needy.mask_id(row.id_number)})
        return {"saved": len(assessments), "errors": [], "error_count": 0}


def needy_record(db: Database, caller: Caller, student_number: str, academic_year: str,
                 reveal: bool = False) -> dict[str, Any]:
    with db.transaction() as s:
        student = access.student_for(s, caller, student_number, *access.AID_DATA)
        row = s.scalars(select(NeedyRecord).where(NeedyRecord.student_number == student_number,
                                                  NeedyRecord.academic_year == academic_year)).one_or_none()
        if row is None:
            raise NotFound(f"学生 {student_number} 没有 {academic_year} 学年的困难认定")
        shown = access.may_reveal(caller, reveal)
        audit(s, caller, "needy.reveal" if shown else "needy.view", student_number,
              None, {"academic_year": academic_year})
        return needy_view(row, student, shown)


def _scope_filter(caller: Caller, stmt: Any) -> Any:
    """Restrict a query joined with Student to the caller's scope (the aid centre sees all)."""
    if access.whole_register(caller):
        return stmt
    kind, ids = caller.scope.kind, list(caller.scope.ids)
    if kind == "college":
        return stmt.where(Student.college_code.in_(ids))
    if kind == "classes":
        return stmt.where(Student.class_code.in_(ids))
    if kind == "self":
        return stmt.where(Student.student_number.in_(ids))
    raise Forbidden("您没有资助数据的访问权限")


def needy_register(db: Database, caller: Caller, academic_year: str, page: int = 1, per_page: int = 20,
                   level: str = "") -> dict[str, Any]:
    caller.require_role(*access.AID_CENTRE, *access.SCOPED_STAFF)
    needy.parse_academic_year(academic_year)
    page, per_page = max(int(page), 1), min(max(int(per_page), 1), 200)
    with db.transaction() as s:
        stmt = select(NeedyRecord, Student).join(Student, Student.student_number == NeedyRecord.student_number) \
            .where(NeedyRecord.academic_year == academic_year)
        if level:
            stmt = stmt.where(NeedyRecord.level == level)
        stmt = _scope_filter(caller, stmt)
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.execute(stmt.order_by(NeedyRecord.student_number).offset((page - 1) * per_page).limit(per_page)).all()
        audit(s, caller, "needy.list", academic_year, None, {"page": page, "count": len(rows), "level": level})
        return {"total": total, "page": page, "per_page": per_page,
                "items": [needy_view(r, st, reveal=False) for r, st in rows], "levels": list(access.levels().names),
                "flags": list(needy.FLAGS)}


# ---- programmes -------------------------------------------------------------------------------


def programmes_in(s: Session) -> dict[str, Programme]:
    """The programmes table, filled with the national defaults the first time it is read."""
    rows = list(s.scalars(select(ProgrammeRow)))
    if not rows:
        now = _now()
        for p in DEFAULT_PROGRAMMES:
            s.add(ProgrammeRow(code=p.code, name=p.name, rules=json.dumps(p.to_dict(), ensure_ascii=False),
                               updated_at=now))
        s.flush()
        return {p.code: p for p in DEFAULT_PROGRAMMES}
    return {r.code: Programme.from_dict(json.loads(r.rules)) for r in rows}


def programme_in(s: Session, code: str) -> Programme:
    found = programmes_in(s).get(code)
    if found is None:
        raise NotFound(f"没有资助项目“{code}”")
    return found


def list_programmes(db: Database, caller: Caller) -> list[dict[str, Any]]:
    caller.require_role(*access.AID_DATA)
    with db.transaction() as s:
        return [p.to_dict() for p in programmes_in(s).values()]


def save_programme(db: Database, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
    caller.require_role(AID_OPERATOR)
    try:
        programme = Programme.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"资助项目规则格式不正确：{exc}") from None
    if not programme.code or not programme.name:
        raise Invalid("资助项目须有代码和名称")
    try:
        problems = programme_problems(programme, access.levels())
    except TypeError:  # e.g. a number sent as text
        raise Invalid("资助项目规则格式不正确：金额、年级、排名、期数须为整数") from None
    if problems:
        raise Invalid("；".join(problems))
    with db.transaction() as s:
        existing = programmes_in(s)
        before = existing[programme.code].to_dict() if programme.code in existing else None
        row = s.get(ProgrammeRow, programme.code) or ProgrammeRow(code=programme.code)
        row.name, row.updated_at = programme.name, _now()
        row.rules = json.dumps(programme.to_dict(), ensure_ascii=False)
        s.add(row)
        audit(s, caller, "programme.save", programme.code, before, programme.to_dict())
        return programme.to_dict()


# ---- quotas (A2) ------------------------------------------------------------------------------


def quota_view(row: QuotaRow) -> dict[str, Any]:
    return {"programme_code": row.programme_code, "academic_year": row.academic_year, "level": row.level,
            "level_label": quotas.LEVEL_LABELS.get(row.level, row.level), "unit_code": row.unit_code,
            "places": row.places, "funds": row.funds, "used_places": row.used_places, "used_funds": row.used_funds,
            "allocated_by": row.allocated_by, "allocated_at": row.allocated_at.isoformat()}


def _quota(row: QuotaRow | None) -> quotas.Quota | None:
    if row is None:
        return None
    return quotas.Quota(row.level, row.unit_code, row.places, row.funds, row.used_places, row.used_funds)


def _quota_row(s: Session, programme: str, year: str, level: str, unit: str, lock: bool = False) -> QuotaRow | None:
    stmt = select(QuotaRow).where(QuotaRow.programme_code == programme, QuotaRow.academic_year == year,
                                  QuotaRow.level == level, QuotaRow.unit_code == unit)
    return s.scalars(stmt.with_for_update() if lock else stmt).one_or_none()


def allocate_quota(db: Database, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
    """Allocate places and/or funds top-down (A2; either may be left unlimited: funds only is a
    common national allocation); a college's deputy secretary may split its share among classes."""
    try:
        programme_code = str(data["programme_code"])
        year = str(data["academic_year"])
        level = str(data["level"])
        places = None if data.get("places") in (None, "") else int(data["places"])
        funds = None if data.get("funds") in (None, "") else int(data["funds"])
    except (KeyError, TypeError, ValueError):
        raise Invalid("分配信息不完整：项目、学年、层级，名额或资金须为整数") from None
    needy.parse_academic_year(year)
    college = str(data.get("college_code") or "")
    klass = str(data.get("class_code") or "")
    if level == quotas.CLASS and not college:
        college = klass[4:6] if len(klass) >= 6 else ""
    unit = quotas.unit_of(level, college, klass) if level in quotas.LEVELS else ""
    if level != quotas.PROGRAMME and not unit:
        raise Invalid("请填写学院或班级代码")
    if level == quotas.CLASS and caller.role == DEPUTY_SECRETARY:
        if caller.scope.kind != "college" or college not in caller.scope.ids:
            raise Forbidden(f"班级 {klass} 不在您的数据权限范围内")
    else:
        caller.require_role(AID_OPERATOR)
    with db.transaction() as s:
        programme_in(s, programme_code)
        parent_row = None
        siblings = (0, 0)
        if level in quotas.PARENT:
            parent_level = quotas.PARENT[level]
            # Lock the parent: two allocations splitting it at once must not both fit.
            parent_row = _quota_row(s, programme_code, year, parent_level,
                                    quotas.unit_of(parent_level, college, klass), lock=True)
            child_units = select(QuotaRow).where(QuotaRow.programme_code == programme_code,
                                                 QuotaRow.academic_year == year, QuotaRow.level == level,
                                                 QuotaRow.unit_code != unit)
            if level == quotas.CLASS:
                child_units = child_units.where(QuotaRow.unit_code.like(f"____{college}%"))
            others = list(s.scalars(child_units))
            siblings = (sum(o.places or 0 for o in others), sum(o.funds or 0 for o in others))
        current = _quota_row(s, programme_code, year, level, unit, lock=True)
        problems = quotas.allocation_problems(level, places, funds, _quota(parent_row), siblings[0], siblings[1],
                                              _quota(current))
        if problems:
            raise Conflict("；".join(problems))
        before = None if current is None else quota_view(current)
        if current is None:
            current = QuotaRow(programme_code=programme_code, academic_year=year, level=level, unit_code=unit,
                               used_places=0, used_funds=0)
            s.add(current)
        current.places, current.funds = places, funds
        current.allocated_by, current.allocated_at = caller.username, _now()
        s.flush()
        audit(s, caller, "quota.allocate", f"{programme_code}/{year}/{level}/{unit}", before, quota_view(current))
        return quota_view(current)


def list_quotas(db: Database, caller: Caller, programme_code: str, academic_year: str) -> list[dict[str, Any]]:
    caller.require_role(*access.AID_CENTRE, DEPUTY_SECRETARY)
    with db.reading() as s:
        stmt = select(QuotaRow).where(QuotaRow.programme_code == programme_code,
                                      QuotaRow.academic_year == academic_year)
        rows = list(s.scalars(stmt.order_by(QuotaRow.level.desc(), QuotaRow.unit_code)))
    if caller.role == DEPUTY_SECRETARY:
        mine = set(caller.scope.ids) if caller.scope.kind == "college" else set()
        rows = [r for r in rows if r.level == quotas.PROGRAMME
                or (r.level == quotas.COLLEGE and r.unit_code in mine)
                or (r.level == quotas.CLASS and r.unit_code[4:6] in mine)]
    return [quota_view(r) for r in rows]


# ---- consistency (A1) -------------------------------------------------------------------------


def consistency_check(db: Database, caller: Caller, academic_year: str) -> dict[str, Any]:
    caller.require_role(*access.AID_CENTRE)
    levels = access.levels()
    with db.transaction() as s:
        programmes = programmes_in(s)
        needy_levels = dict(s.execute(select(NeedyRecord.student_number, NeedyRecord.level)
                                      .where(NeedyRecord.academic_year == academic_year)).tuples().all())
        awards = list(s.scalars(select(Award).where(Award.academic_year == academic_year)))
        numbers = set(needy_levels) | {a.student_number for a in awards}
        enrolled = {}
        for chunk in _chunks(sorted(numbers), 500):
            for st in s.scalars(select(Student).where(Student.student_number.in_(chunk))):
                enrolled[st.student_number] = consistency.EnrolledFact(
                    registers.is_enrolled(st.status, st.left), st.stop_instalments)
        # Paid after the student's register row last changed while stopped: i.e. after leaving.
        stopped_paid = dict(s.execute(
            select(Instalment.award_id, func.count()).join(Student, Student.student_number == Instalment.student_number)
            .where(Instalment.state == instalments.PAID, Student.stop_instalments.is_(True),
                   Instalment.settled_at > Student.updated_at)
            .group_by(Instalment.award_id)).tuples().all())
        facts = []
        for a in awards:
            p = programmes.get(a.programme_code)
            facts.append(consistency.AwardFact(a.student_number, a.programme_code, p.name if p else a.programme_code,
                                               bool(p and p.requires_need), stopped_paid.get(a.id, 0)))
        found = consistency.check(needy_levels, enrolled, facts, levels)
        audit(s, caller, "consistency.check", academic_year, None, {"violations": len(found)})
    return {"academic_year": academic_year, "checked_at": _now().isoformat(),
            "needy": len(needy_levels), "aided": len(awards),
            "violations": [{"rule": v.rule, "student_number": v.student_number, "message": v.message} for v in found]}


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def today() -> date:
    return _now().date()

