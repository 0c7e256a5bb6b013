"""Housing reads for many students at once: occupancy by building, college and gender,
free beds, the export of it, and the residents a caller's scope covers (H4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from services.common import sheets
from services.common.caller import HOUSING_CENTRE, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.housing.adapters.orm import Bed, Building, Occupancy, Room, Student
from services.housing.domain.assignment import GENDER_LABELS
from services.housing.domain.end_reasons import end_reason_label
from services.housing.domain.inventory import GENDER_POLICIES
from services.housing.handlers import WHOLE_VIEW, _iso

REPORT_READERS = (HOUSING_CENTRE, STUDENT_AFFAIRS)
MAX_PER_PAGE = 100


def occupancy_report(db: Database, caller: Caller) -> dict[str, Any]:
    """Beds, occupied and free per building; residents per college and per gender;
    beds allocated to each college and how many of them are free."""
    caller.require_role(*REPORT_READERS)
    with db.reading() as s:
        buildings = [{"code": code, "name": name, "gender_policy_label": GENDER_POLICIES.get(policy, policy),
                      "beds": beds, "occupied": occupied, "free": beds - occupied}
                     for code, name, policy, beds, occupied in s.execute(
                         select(Building.code, Building.name, Building.gender_policy, func.count(Bed.id),
                                func.count(Bed.occupant))
                         .select_from(Building).join(Room, Room.building_code == Building.code)
                         .join(Bed, Bed.room_id == Room.id)
                         .group_by(Building.code, Building.name, Building.gender_policy).order_by(Building.code))]
        residents = dict(s.execute(select(Student.college_code, func.count())
                                   .join(Bed, Bed.occupant == Student.student_number)
                                   .group_by(Student.college_code)).all())
        college = func.coalesce(Bed.college_code, Room.college_code)
        allocated = {c: (beds, occupied) for c, beds, occupied in s.execute(
            select(college, func.count(Bed.id), func.count(Bed.occupant))
            .join(Room, Room.id == Bed.room_id).where(college.is_not(None)).group_by(college))}
        colleges = [{"college_code": c, "residents": residents.get(c, 0),
                     "allocated_beds": allocated.get(c, (0, 0))[0],
                     "allocated_free": allocated.get(c, (0, 0))[0] - allocated.get(c, (0, 0))[1]}
                    for c in sorted(set(residents) | set(allocated))]
        genders = [{"gender": g, "label": GENDER_LABELS.get(g, g), "residents": n}
                   for g, n in s.execute(select(Student.gender, func.count())
                                         .join(Bed, Bed.occupant == Student.student_number)
                                         .group_by(Student.gender).order_by(Student.gender))]
        total = sum(b["beds"] for b in buildings)
        occupied = sum(b["occupied"] for b in buildings)
        return {"totals": {"beds": total, "occupied": occupied, "free": total - occupied},
                "buildings": buildings, "colleges": colleges, "genders": genders}


REPORT_COLUMNS = (
    sheets.Column("code", "楼栋编号", text=True),
    sheets.Column("name", "楼栋名称"),
    sheets.Column("gender_policy_label", "性别类型"),
    sheets.Column("beds", "床位数"),
    sheets.Column("occupied", "已入住"),
    sheets.Column("free", "空床位"),
)


def export_report(db: Database, caller: Caller) -> bytes:
    report = occupancy_report(db, caller)
    return sheets.export(REPORT_COLUMNS, report["buildings"], "宿舍入住统计")


RESIDENT_COLUMNS = (
    sheets.Column("student_number", "学号", text=True),
    sheets.Column("name", "姓名"),
    sheets.Column("college_code", "学院代码", text=True),
    sheets.Column("class_code", "班级代码", text=True),
    sheets.Column("bed_label", "床位", width=20),
    sheets.Column("since", "入住时间", width=26),
)


def residents(db: Database, caller: Caller, q: Any = "", page: Any = 1, per_page: Any = 20, *,
              building: Any = "", college: Any = "", housed: Any = False) -> dict[str, Any]:
    """Students with their beds, limited to the caller's scope (H4): counselors see their
    classes, deputy secretaries their college, the housing centre everyone. The occupancy
    chart's bars lead here (issue 9): `building` = residents of that building, `college` with
    `housed` = that college's residents, as `occupancy_report` counts them."""
    if not isinstance(q, str) or len(q) > 64:
        raise Invalid("查询条件不能超过 64 个字符")
    if not isinstance(page, int) or page < 1 or not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
        raise Invalid(f"页码必须不小于 1，每页条数在 1 到 {MAX_PER_PAGE} 之间")
    query = select(Student, Bed).outerjoin(Bed, Bed.occupant == Student.student_number)
    if caller.role not in WHOLE_VIEW and caller.scope.kind != "institution":
        kind, ids = caller.scope.kind, list(caller.scope.ids)
        if kind == "classes":
            query = query.where(Student.class_code.in_(ids))
        elif kind == "college":
            query = query.where(Student.college_code.in_(ids))
        elif kind == "self":
            query = query.where(Student.student_number.in_(ids))
        else:
            raise Forbidden("您没有查看学生住宿的权限")
    q = q.strip()
    if q:
        query = query.where(or_(Student.student_number.startswith(q), Student.name.contains(q)))
    if not isinstance(building, str) or not isinstance(college, str) or len(building) > 32 or len(college) > 16:
        raise Invalid("楼栋或学院代码无效")
    if building:
        query = query.where(Bed.room_id.in_(select(Room.id).where(Room.building_code == building)))
    if college:
        query = query.where(Student.college_code == college)
    if housed:
        query = query.where(Bed.id.is_not(None))
    with db.reading() as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.execute(query.order_by(Student.student_number).offset((page - 1) * per_page).limit(per_page))
        items = [{"student_number": st.student_number, "name": st.name, "gender": st.gender,
                  "gender_label": GENDER_LABELS.get(st.gender, ""), "college_code": st.college_code,
                  "class_code": st.class_code, "status": st.status,
                  "bed_label": bed.label if bed else None, "since": _iso(bed.occupied_since) if bed else None}
                 for st, bed in rows]
        return {"items": items, "total": total, "page": page, "per_page": per_page}


def holders_who_left_export(rows: list[dict[str, Any]]) -> bytes:
    flat = [{"student_number": r["student_number"], "name": r["name"], "college_code": r["college_code"],
             "class_code": r["class_code"], "bed_label": r["bed"]["label"], "since": r["bed"]["since"]}
            for r in rows]
    return sheets.export(RESIDENT_COLUMNS, flat, "离校未退宿名单")


def stays_of_bed(db: Database, caller: Caller, label: Any) -> list[dict[str, Any]]:
    """Every stay in one bed, newest first (history of every occupancy)."""
    caller.require_role(*REPORT_READERS)
    with db.reading() as s:
        rows = s.execute(select(Occupancy, Student.name).join(Bed, Bed.id == Occupancy.bed_id)
                         .outerjoin(Student, Student.student_number == Occupancy.student_number)
                         .where(Bed.label == str(label)).order_by(Occupancy.started_at.desc(), Occupancy.id.desc()))
        return [{"student_number": o.student_number, "name": name, "started_at": _iso(o.started_at),
                 "ended_at": _iso(o.ended_at), "end_reason": o.end_reason,
                 "end_reason_label": end_reason_label(o.end_reason), "checked_in_at": _iso(o.checked_in_at),
                 "override_reason": o.override_reason} for o, name in rows]
