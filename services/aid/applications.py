"""Aid use cases of applications: apply, the review chain with quotas, the aided register, instalments (A1–A3)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from services.aid import access
from services.aid.adapters.orm import Application, Award, Instalment, NeedyRecord, QuotaRow, Review, Student
from services.aid.domain import instalments, needy, quotas, registers, review
from services.aid.domain.programmes import Applicant, Programme, amount_for, refusals
from services.aid.registers import programme_in, programmes_in
from services.common.audit import audit
from services.common.caller import AID_OPERATOR, Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound

SUBMIT = "submit"  # a Review row marking (re)submission by the collector; approvals after it count
DECISION_LABELS = {SUBMIT: "提交申请", review.APPROVE: "通过", review.RETURN: "退回", "report": "报送"}


def _now() -> datetime:
    return datetime.now(UTC)


def _int_or_none(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{what}必须是整数") from None


def applicant_of(s: Session, student: Student, academic_year: str, rank_percent: int | None,
                 postgraduate: bool = False) -> Applicant:
    level = s.scalar(select(NeedyRecord.level).where(NeedyRecord.student_number == student.student_number,
                                                     NeedyRecord.academic_year == academic_year))
    return applicant_with(student, level, academic_year, rank_percent, postgraduate)


def applicant_with(student: Student, level: str | None, academic_year: str, rank_percent: int | None,
                   postgraduate: bool = False) -> Applicant:
    """The applicant as the rules see it, the need level already looked up (batches load them at once)."""
    return Applicant(enrolled=registers.is_enrolled(student.status, student.left),
                     year_of_study=needy.year_of_study(student.class_code, student.student_number, academic_year),
                     need_level=level, rank_percent=rank_percent, postgraduate=postgraduate,
                     stop_instalments=student.stop_instalments)


def application_view(app: Application, student: Student | None, programme: Programme | None,
                     reviews: list[Review] | None = None) -> dict[str, Any]:
    step = review.BY_STATUS.get(app.status)
    view = {
        "id": app.id, "student_number": app.student_number, "name": student.name if student else "",
        "college_code": app.college_code, "class_code": app.class_code,
        "programme_code": app.programme_code, "programme_name": programme.name if programme else app.programme_code,
        "academic_year": app.academic_year, "amount": app.amount, "requested_amount": app.requested_amount,
        "rank_percent": app.rank_percent, "statement": app.statement,
        "status": app.status, "status_label": review.STATUS_LABELS.get(app.status, app.status),
        "step_label": step.label if step else "", "quota_taken": app.quota_taken,
        # Who collects is responsible; who reviews is responsible (A3).
        "collected_by": app.collected_by, "collected_role": app.collected_role,
        "created_at": app.created_at.isoformat(), "updated_at": app.updated_at.isoformat(),
    }
    if reviews is not None:
        view["reviews"] = [{"step": r.step, "step_label": review.STATUS_LABELS.get(r.step, r.step),
                            "decision": r.decision, "decision_label": DECISION_LABELS.get(r.decision, r.decision),
                            "reason": r.reason, "reviewer": r.reviewer, "reviewer_role": r.reviewer_role,
                            "at": r.at.isoformat()} for r in reviews]
    return view


def apply(db: Database, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
    """A student applies (or staff enter the application for them); a returned one is amended and resubmitted."""
    if not isinstance(data, dict):
        raise Invalid("申请信息格式不正确")
    number = str(data.get("student_number", "")).strip()
    year = str(data.get("academic_year", "")).strip()
    needy.parse_academic_year(year)
    requested = _int_or_none(data.get("requested_amount"), "申请金额")
    rank_percent = _int_or_none(data.get("rank_percent"), "成绩排名百分比")
    statement = str(data.get("statement", "")).strip()
    if not statement:
        raise Invalid("请填写申请理由")
    levels = access.levels()
    with db.transaction() as s:
        student = access.student_for(s, caller, number, "student", AID_OPERATOR, *access.SCOPED_STAFF)
        programme = programme_in(s, str(data.get("programme_code", "")))
        applicant = applicant_of(s, student, year, rank_percent, bool(data.get("postgraduate")))
        problems = refusals(programme, applicant, levels, requested)
        if problems:
            raise Conflict("不符合申请条件：" + "；".join(problems))
        app = s.scalars(select(Application).where(Application.student_number == number,
                                                  Application.programme_code == programme.code,
                                                  Application.academic_year == year).with_for_update()).one_or_none()
        now = _now()
        before = None
        if app is not None:
            if app.status != review.RETURNED:
                raise Conflict(f"本学年已申请{programme.name}，当前状态：{review.STATUS_LABELS.get(app.status)}")
            before = application_view(app, student, programme)
        else:
            app = Application(student_number=number, programme_code=programme.code, academic_year=year,
                              quota_taken=False, created_at=now)
            s.add(app)
        app.college_code, app.class_code = student.college_code, student.class_code
        app.requested_amount, app.rank_percent, app.statement = requested, rank_percent, statement
        app.amount = amount_for(programme, applicant.need_level, requested)
        app.status = review.APPLIED
        app.collected_by, app.collected_role, app.updated_at = caller.username, caller.role, now
        s.flush()
        s.add(Review(application_id=app.id, step=review.APPLIED, decision=SUBMIT, reason="", reviewer=caller.username,
                     reviewer_role=caller.role, at=now))
        after = application_view(app, student, programme)
        audit(s, caller, "application.submit", f"application:{app.id}", before, after)
        return after


def _load(s: Session, caller: Caller, application_id: int, *roles: str,
          lock: bool = False) -> tuple[Application, Student]:
    caller.require_role(*roles)
    stmt = select(Application).where(Application.id == int(application_id))
    app = s.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
    student = s.get(Student, app.student_number) if app else None
    return _visible(caller, application_id, app, student)


def _visible(caller: Caller, application_id: Any, app: Application | None,
             student: Student | None) -> tuple[Application, Student]:
    """The application if the caller's scope covers it; unknown ones look the same as foreign ones to scoped staff."""
    if app is None or student is None:
        if access.whole_register(caller):
            raise NotFound(f"没有编号为 {application_id} 的申请")
        raise Forbidden("该申请不在您的数据权限范围内")
    caller.require_student(app.student_number, app.college_code, app.class_code)
    return app, student


def _quota_key(app: Application) -> list[tuple[str, str]]:
    """The units an approval takes its place from, or a held place is given back to (where it was taken).
    Class first, then college, then programme: the same order everywhere, so concurrent takers never deadlock."""
    klass = app.quota_class_code if app.quota_taken and app.quota_class_code else app.class_code
    college = app.quota_college_code if app.quota_taken and app.quota_college_code else app.college_code
    return [(quotas.CLASS, klass), (quotas.COLLEGE, college), (quotas.PROGRAMME, "")]


def _held_at(app: Application, taken: bool) -> None:
    """Mark the place as taken (where the application is now) or given back."""
    app.quota_taken = taken
    app.quota_class_code = app.class_code if taken else None
    app.quota_college_code = app.college_code if taken else None


# Built once (cache key included): these run once per level for every approval and return.
_TAKE = (update(QuotaRow)
         .where(QuotaRow.programme_code == bindparam("b_p"), QuotaRow.academic_year == bindparam("b_y"),
                QuotaRow.level == bindparam("b_level"), QuotaRow.unit_code == bindparam("b_unit"),
                or_(QuotaRow.places.is_(None), QuotaRow.used_places + 1 <= QuotaRow.places),
                or_(QuotaRow.funds.is_(None), QuotaRow.used_funds + bindparam("b_amount") <= QuotaRow.funds))
         .values(used_places=QuotaRow.used_places + 1, used_funds=QuotaRow.used_funds + bindparam("b_amount"))
         .execution_options(synchronize_session=False))
_RELEASE = (update(QuotaRow)
            .where(QuotaRow.programme_code == bindparam("b_p"), QuotaRow.academic_year == bindparam("b_y"),
                   QuotaRow.level == bindparam("b_level"), QuotaRow.unit_code == bindparam("b_unit"))
            .values(used_places=QuotaRow.used_places - 1, used_funds=QuotaRow.used_funds - bindparam("b_amount"))
            .execution_options(synchronize_session=False))


def take_place(s: Session, app: Application) -> None:
    """One place (and its amount) from the class, college and programme quotas, or Conflict.

    A conditional UPDATE (`quotas.has_room` in SQL) per level: PostgreSQL re-checks the condition on
    the locked row after a concurrent approval commits, SQLite runs writers one at a time, so
    concurrent approvals can never over-allocate (tests/test_quota_concurrency.py).
    """
    for level, unit in _quota_key(app):
        params = {"b_p": app.programme_code, "b_y": app.academic_year, "b_level": level, "b_unit": unit,
                  "b_amount": app.amount}
        if s.connection().execute(_TAKE, params).rowcount != 1:
            exists = s.scalar(select(func.count()).select_from(QuotaRow).where(
                QuotaRow.programme_code == app.programme_code, QuotaRow.academic_year == app.academic_year,
                QuotaRow.level == level, QuotaRow.unit_code == unit))
            raise _quota_refusal(level, unit, bool(exists))


def _quota_refusal(level: str, unit: str, exists: bool) -> Conflict:
    label = quotas.LEVEL_LABELS[level]
    return Conflict(f"{label}{unit}的名额或资金已用完" if exists else f"{label}{unit}尚未分配名额")


def release_place(s: Session, app: Application) -> None:
    for level, unit in _quota_key(app):
        s.connection().execute(_RELEASE, {"b_p": app.programme_code, "b_y": app.academic_year, "b_level": level,
                                          "b_unit": unit, "b_amount": app.amount})


class _SqlQuotas:
    """Quota places of one approval at a time: the conditional UPDATEs of `take_place`."""

    def __init__(self, s: Session) -> None:
        self.s = s

    def take(self, app: Application) -> None:
        take_place(self.s, app)

    def release(self, app: Application) -> None:
        release_place(self.s, app)


class _QuotaLedger:
    """Quota places of a batch: the rows the batch can touch, locked up front in the order every taker
    locks them (class, college, programme; by unit), counted here with `quotas.has_room` — the rule the
    conditional UPDATE applies — and written by the batch's one flush. Nobody else can change a locked
    row meanwhile, so counting in memory is as safe as re-checking in SQL, without three UPDATEs each."""

    def __init__(self, s: Session, apps: list[Application]) -> None:
        keys = {(a.programme_code, a.academic_year, level, unit) for a in apps for level, unit in _quota_key(a)}
        self.rows: dict[tuple[str, str, str, str], QuotaRow] = {}
        for level in (quotas.CLASS, quotas.COLLEGE, quotas.PROGRAMME):
            units = sorted({k[3] for k in keys if k[2] == level})
            for chunk in _chunks(units):
                stmt = (select(QuotaRow)
                        .where(QuotaRow.level == level, QuotaRow.unit_code.in_(chunk),
                               QuotaRow.programme_code.in_({k[0] for k in keys}),
                               QuotaRow.academic_year.in_({k[1] for k in keys}))
                        .order_by(QuotaRow.unit_code, QuotaRow.programme_code, QuotaRow.academic_year)
                        .with_for_update().execution_options(populate_existing=True))
                for row in s.scalars(stmt):
                    self.rows[(row.programme_code, row.academic_year, row.level, row.unit_code)] = row

    def _rows(self, app: Application) -> list[tuple[str, str, QuotaRow | None]]:
        return [(level, unit, self.rows.get((app.programme_code, app.academic_year, level, unit)))
                for level, unit in _quota_key(app)]

    def take(self, app: Application) -> None:
        found = self._rows(app)
        for level, unit, row in found:  # every level checked before any is counted: all or nothing
            if row is None:
                raise _quota_refusal(level, unit, False)
            if not quotas.has_room(quotas.Quota(level, unit, row.places, row.funds, row.used_places,
                                                row.used_funds), app.amount):
                raise _quota_refusal(level, unit, True)
        for _level, _unit, row in found:
            assert row is not None
            row.used_places += 1
            row.used_funds += app.amount

    def release(self, app: Application) -> None:
        for _level, _unit, row in self._rows(app):
            if row is not None:
                row.used_places -= 1
                row.used_funds -= app.amount


def _chunks(values: list[Any], size: int = 900) -> list[list[Any]]:
    """IN lists cut below SQLite's bound-parameter limit."""
    return [values[i:i + size] for i in range(0, len(values), size)]


def review_application(db: Database, caller: Caller, application_id: int, decision: str,
                       reason: str = "") -> dict[str, Any]:
    """One review step: approve (eligibility and quota checked again) or return to the student with a reason."""
    levels = access.levels()
    with db.transaction() as s:
        app, student = _load(s, caller, application_id, *review.REVIEW_ROLES, lock=True)
        history = list(s.scalars(select(Review).where(Review.application_id == app.id).order_by(Review.id)))
        need_level = s.scalar(select(NeedyRecord.level).where(NeedyRecord.student_number == app.student_number,
                                                              NeedyRecord.academic_year == app.academic_year))
        return _review_one(s, caller, app, student, history, need_level, programmes_in(s), levels, decision,
                           reason, _SqlQuotas(s))


def review_many(db: Database, caller: Caller, application_ids: list[int], decision: str,
                reason: str = "") -> dict[str, Any]:
    """批量审核: the same step for many applications in one transaction; each one is checked as if alone,
    so one refused application (ineligible, quota used up, out of scope) does not undo the others.

    What each step reads is loaded first, a few IN queries for the whole batch (applications locked,
    students, review histories, need levels, quota rows locked); every check runs before anything of
    its application is written, so a refusal leaves nothing to undo and no savepoint is needed."""
    caller.require_role(*review.REVIEW_ROLES)
    if not isinstance(application_ids, list) or len(application_ids) > 50000:
        raise Invalid("批量审核的申请编号须为列表，且不超过 50000 个")
    try:
        wanted = [int(i) for i in application_ids]
    except (TypeError, ValueError):
        raise Invalid("申请编号须为整数") from None
    levels = access.levels()
    done, refused = 0, []
    with db.transaction() as s, s.no_autoflush:
        programmes = programmes_in(s)
        ids = sorted(set(wanted))  # locked in id order, as single reviews would
        apps: dict[int, Application] = {}
        for chunk in _chunks(ids):
            apps.update((a.id, a) for a in s.scalars(
                select(Application).where(Application.id.in_(chunk)).order_by(Application.id).with_for_update()))
        numbers = sorted({a.student_number for a in apps.values()})
        students: dict[str, Student] = {}
        need: dict[tuple[str, str], str] = {}
        for chunk in _chunks(numbers):
            students.update((st.student_number, st) for st in s.scalars(
                select(Student).where(Student.student_number.in_(chunk))))
            need.update(((n, y), lvl) for n, y, lvl in s.execute(
                select(NeedyRecord.student_number, NeedyRecord.academic_year, NeedyRecord.level)
                .where(NeedyRecord.student_number.in_(chunk))))
        histories: dict[int, list[Review]] = {}
        for chunk in _chunks(sorted(apps)):
            for r in s.scalars(select(Review).where(Review.application_id.in_(chunk)).order_by(Review.id)):
                histories.setdefault(r.application_id, []).append(r)
        ledger = _QuotaLedger(s, list(apps.values()))
        for app_id in wanted:
            app = apps.get(app_id)
            try:
                app, student = _visible(caller, app_id, app, students.get(app.student_number) if app else None)
                _review_one(s, caller, app, student, histories.setdefault(app.id, []),
                            need.get((app.student_number, app.academic_year)), programmes, levels, decision,
                            reason, ledger)
                done += 1
            except (Conflict, Forbidden, NotFound) as exc:
                refused.append({"id": app_id, "message": str(exc.args[0]) if exc.args else "审核失败"})
    return {"done": done, "refused": refused}


def _review_one(s: Session, caller: Caller, app: Application, student: Student, history: list[Review],
                need_level: str | None, programmes: dict[str, Programme], levels: needy.Levels, decision: str,
                reason: str, places: _SqlQuotas | _QuotaLedger) -> dict[str, Any]:
    """One decision on one application. Every check (step, role, eligibility, quota room) comes before
    any write, so a refusal leaves the session as it was. `history`: the application's reviews so far
    (the new one is appended, so a batch naming an application twice sees its first decision)."""
    programme = programmes.get(app.programme_code)
    if programme is None:
        raise NotFound(f"没有资助项目“{app.programme_code}”")
    last_submit = max((i for i, r in enumerate(history) if r.decision == SUBMIT), default=-1)
    earlier = {r.reviewer for r in history[last_submit + 1:] if r.decision == review.APPROVE}
    old_status = app.status
    before = application_view(app, student, programme)
    new_status = review.decide(old_status, caller.role, decision, reason or "", caller.username, earlier,
                               system=caller.is_system())
    if decision == review.APPROVE:
        applicant = applicant_with(student, need_level, app.academic_year, app.rank_percent)
        problems = refusals(programme, applicant, levels, app.requested_amount)
        if problems:
            raise Conflict("不符合条件，请退回：" + "；".join(problems))
        if old_status == review.TAKES_QUOTA:
            places.take(app)
            _held_at(app, True)
        elif not app.quota_taken:
            raise Conflict("该申请未占用名额，请退回后重新审核")
    elif app.quota_taken:
        places.release(app)
        _held_at(app, False)
    now = _now()
    app.status, app.updated_at = new_status, now
    decided = Review(application_id=app.id, step=old_status, decision=decision, reason=(reason or "").strip(),
                     reviewer=caller.username, reviewer_role=caller.role, at=now)
    s.add(decided)
    history.append(decided)
    if new_status == review.AUDITED:
        _award(s, app, programme, now.date())
    after = application_view(app, student, programme)
    audit(s, caller, f"application.{decision}", f"application:{app.id}", before, after)
    return after


def _award(s: Session, app: Application, programme: Programme, on: date) -> None:
    """Approved by the school auditor: the student enters the aided register with an instalment plan."""
    award = Award(application_id=app.id, student_number=app.student_number, programme_code=app.programme_code,
                  academic_year=app.academic_year, amount=app.amount, awarded_on=on, payer=programme.payer)
    s.add(award)
    s.flush()
    for p in instalments.plan(app.amount, programme.instalments, on):
        s.add(Instalment(award_id=award.id, student_number=app.student_number, seq=p.seq, due_on=p.due_on,
                         amount=p.amount, state=instalments.DUE))


def get_application(db: Database, caller: Caller, application_id: int) -> dict[str, Any]:
    with db.transaction() as s:
        app, student = _load(s, caller, application_id, *access.AID_DATA)
        reviews = list(s.scalars(select(Review).where(Review.application_id == app.id).order_by(Review.id)))
        audit(s, caller, "application.view", f"application:{app.id}")
        return application_view(app, student, programmes_in(s).get(app.programme_code), reviews)


def review_queue(db: Database, caller: Caller, page: int = 1, per_page: int = 20) -> dict[str, Any]:
    """The applications waiting for the caller's own step, within their scope."""
    caller.require_role(*review.REVIEW_ROLES)
    statuses = [st.status for st in review.STEPS] if caller.is_system() else \
        [st.status for st in review.steps_of(caller.role)]
    page, per_page = max(int(page), 1), min(max(int(per_page), 1), 200)
    with db.transaction() as s:
        stmt = select(Application, Student).join(Student, Student.student_number == Application.student_number) \
            .where(Application.status.in_(statuses))
        if not access.whole_register(caller):
            kind, ids = caller.scope.kind, list(caller.scope.ids)
            if kind == "college":
                stmt = stmt.where(Application.college_code.in_(ids))
            elif kind == "classes":
                stmt = stmt.where(Application.class_code.in_(ids))
            else:
                raise Forbidden("您没有审核范围")
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.execute(stmt.order_by(Application.id).offset((page - 1) * per_page).limit(per_page)).all()
        programmes = programmes_in(s)
        audit(s, caller, "application.queue", caller.role, None, {"page": page, "count": len(rows)})
        return {"total": total, "page": page, "per_page": per_page,
                "steps": [st.label for st in review.steps_of(caller.role)],
                "items": [application_view(a, st, programmes.get(a.programme_code)) for a, st in rows]}


def my_aid(db: Database, caller: Caller) -> dict[str, Any]:
    """A student's own applications, awards and instalments."""
    caller.require_role("student")
    numbers = list(caller.scope.ids) if caller.scope.kind == "self" else []
    if not numbers:
        raise Forbidden("没有关联的学号")
    with db.transaction() as s:
        programmes = programmes_in(s)
        apps = list(s.scalars(select(Application).where(Application.student_number.in_(numbers))
                              .order_by(Application.id.desc())))
        reviews: dict[int, list[Review]] = {}
        for r in s.scalars(select(Review).where(Review.application_id.in_([a.id for a in apps])).order_by(Review.id)):
            reviews.setdefault(r.application_id, []).append(r)
        students = {st.student_number: st
                    for st in s.scalars(select(Student).where(Student.student_number.in_(numbers)))}
        audit(s, caller, "aid.view_own", ",".join(numbers))
        return {"applications": [application_view(a, students.get(a.student_number), programmes.get(a.programme_code),
                                                   reviews.get(a.id, [])) for a in apps],
                "instalments": _instalment_views(s, numbers)}


def _instalment_views(s: Session, numbers: list[str]) -> list[dict[str, Any]]:
    rows = s.execute(select(Instalment, Award.programme_code).join(Award, Award.id == Instalment.award_id)
                     .where(Instalment.student_number.in_(numbers)).order_by(Instalment.due_on, Instalment.id)).all()
    return [{"student_number": i.student_number, "programme_code": code, "seq": i.seq,
             "due_on": i.due_on.isoformat(), "amount": i.amount, "state": i.state,
             "state_label": instalments.STATE_LABELS.get(i.state, i.state),
             "settled_at": i.settled_at.isoformat() if i.settled_at else None} for i, code in rows]


def student_instalments(db: Database, caller: Caller, student_number: str) -> dict[str, Any]:
    with db.transaction() as s:
        student = access.student_for(s, caller, student_number, *access.AID_DATA)
        audit(s, caller, "instalments.view", student_number)
        return {"student_number": student_number, "stop_instalments": student.stop_instalments,
                "instalments": _instalment_views(s, [student_number])}


def pay_instalments(db: Database, caller: Caller, on_date: str) -> dict[str, Any]:
    """A payment run: instalments due by `on_date` are paid, except those of students who left (stopped)."""
    caller.require_role(AID_OPERATOR)
    try:
        today = date.fromisoformat(on_date)
    except (TypeError, ValueError):
        raise Invalid("发放日期格式应为 yyyy-mm-dd") from None
    with db.transaction() as s:
        rows = s.execute(select(Instalment, Student.stop_instalments)
                         .join(Student, Student.student_number == Instalment.student_number)
                         .where(Instalment.state == instalments.DUE, Instalment.due_on <= today)
                         .with_for_update(of=Instalment)).all()
        now = _now()
        paid, stopped = [], []
        for inst, stop in rows:
            state = instalments.decide(inst.state, inst.due_on, today, stop)
            if state != inst.state:
                inst.state, inst.settled_at = state, now
                (paid if state == instalments.PAID else stopped).append(inst)
        audit(s, caller, "instalments.run", on_date, None,
              {"paid": len(paid), "amount": sum(i.amount for i in paid), "stopped": len(stopped),
               "stopped_students": sorted({i.student_number for i in stopped})[:200]})
        return {"on_date": on_date, "paid": len(paid), "paid_amount": sum(i.amount for i in paid),
                "stopped": len(stopped), "stopped_students": sorted({i.student_number for i in stopped})}


def aided_register(db: Database, caller: Caller, academic_year: str, page: int = 1,
                   per_page: int = 20, programme_code: str = "") -> dict[str, Any]:
    """受助学生库 of a year; `programme_code` narrows it to one programme (a bar of the dashboard)."""
    caller.require_role(*access.AID_CENTRE)
    needy.parse_academic_year(academic_year)
    page, per_page = max(int(page), 1), min(max(int(per_page), 1), 200)
    with db.transaction() as s:
        stmt = select(Award, Student).join(Student, Student.student_number == Award.student_number) \
            .where(Award.academic_year == academic_year)
        if programme_code:
            stmt = stmt.where(Award.programme_code == str(programme_code))
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.execute(stmt.order_by(Award.id).offset((page - 1) * per_page).limit(per_page)).all()
        programmes = programmes_in(s)
        audit(s, caller, "aided.list", academic_year, None, {"page": page, "count": len(rows)})
        return {"total": total, "page": page, "per_page": per_page, "items": [
            {"student_number": a.student_number, "name": st.name, "college_code": st.college_code,
             "class_code": st.class_code, "programme_code": a.programme_code,
             "programme_name": programmes[a.programme_code].name if a.programme_code in programmes else "",
             "amount": a.amount, "awarded_on": a.awarded_on.isoformat(), "payer": a.payer,
             "stop_instalments": st.stop_instalments, "enrolled": registers.is_enrolled(st.status, st.left)}
            for a, st in rows]}
