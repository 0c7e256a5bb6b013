"""组织机构 (issue 4): the org tree college → major → class with R6 codes — save (all or nothing),
list with student counts in the caller's scope, delete an empty unit. Saves and deletions are
audited (chained) and published as `org.units_changed` (identity's read model of the tree).
The rules are `domain/org_tree.py`."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from services.common import caller as roles
from services.common.audit import audit
from services.common.caller import Caller
from services.common.db import Database
from services.common.envelope import actor_of, new_event
from services.common.errors import Conflict, Invalid, NotFound
from services.common.events import OrgUnitsChanged, OrgUnitState
from services.common.outbox import record_event
from services.common.sheets import CellError, Column, annotate, column_letter, read_rows, template
from services.roster.adapters.orm import OrgUnit, Student
from services.roster.domain import org_tree as tree_rules
from services.roster.domain import status as st
from services.roster.domain.org_tree import Unit

SOURCE = "roster"
EDITORS = (roles.STUDENT_AFFAIRS,)
# Staff read the tree; counselors and deputy secretaries the part their scope covers.
READERS = (roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS,
           roles.IT_CENTRE, roles.HOUSING_CENTRE, roles.AID_OPERATOR, roles.AID_AUDITOR)
ON_CAMPUS = sorted(s for s in st.LABELS if st.on_campus(s))
MAX_PROBLEMS_SHOWN = 20


def _unit(row: OrgUnit) -> Unit:
    return Unit(code=row.code, name=row.name, kind=row.kind, parent_code=row.parent_code)


def _tree(s: Session) -> dict[str, Unit]:
    return {row.code: _unit(row) for row in s.scalars(select(OrgUnit))}


def _publish(s: Session, caller: Caller, units: list[Unit], removed: list[str]) -> None:
    # identity derives a class's college from these (grants, scope checks)
    record_event(s, new_event(
        "org.units_changed",
        OrgUnitsChanged(units=[OrgUnitState(code=u.code, name=u.name, kind=u.kind,  # type: ignore[arg-type]
                                            parent_code=u.parent_code) for u in units], removed=removed),
        source=SOURCE, actor=actor_of(caller), correlation_id=caller.correlation_id))


def refusal(problems: list[tree_rules.Problem]) -> Invalid:
    """Every problem in one message (each naming its unit); the field is the first problem's."""
    shown = "；".join(str(p) for p in problems[:MAX_PROBLEMS_SHOWN])
    more = f"；另有 {len(problems) - MAX_PROBLEMS_SHOWN} 处问题" if len(problems) > MAX_PROBLEMS_SHOWN else ""
    return Invalid(f"组织机构未保存：{shown}{more}", problems[0].field)


def upsert_org_units(db: Database, caller: Caller, units: list[dict[str, Any]],
                     new_only: bool = False) -> dict[str, int]:
    """Create or change units (name; parent for a reorganisation). All or nothing: any problem with
    any unit saves none of them. `new_only`: add units only, a code already in use is refused."""
    caller.require_role(*EDITORS)
    if not isinstance(units, list) or not all(isinstance(u, dict) for u in units):
        raise Invalid("组织单位应为对象列表", "units")
    with db.transaction() as s:
        existing = _tree(s)
        if new_only and (taken := tree_rules.taken_code(units, existing)):
            raise Invalid(taken, "code")
        saved, problems = tree_rules.check_save(units, existing, datetime.now(UTC).year)
        if problems:
            raise refusal(problems)
        _save(s, caller, existing, saved)
    return {"saved": len(units)}


def _save(s: Session, caller: Caller, existing: dict[str, Unit], saved: list[Unit]) -> None:
    """Write checked units: each audited (chained), all in one `org.units_changed`."""
    rows = {r.code: r for r in s.scalars(select(OrgUnit).where(OrgUnit.code.in_([u.code for u in saved])))}
    for unit in saved:
        before = existing.get(unit.code)
        row = rows.get(unit.code)
        if row is None:
            row = OrgUnit(code=unit.code, kind=unit.kind)
            s.add(row)
        row.name, row.parent_code = unit.name, unit.parent_code
        audit(s, caller, "org.upsert", unit.code,
              None if before is None else {"name": before.name, "parent_code": before.parent_code},
              {"name": unit.name, "kind": unit.kind, "parent_code": unit.parent_code}, chain=True)
    if saved:
        _publish(s, caller, saved, [])


def _visible(caller: Caller, tree: dict[str, Unit]) -> tuple[set[str], set[str] | None]:
    """(units shown, classes counted: None = all) for the caller's scope."""
    if caller.is_system() or caller.scope.kind == "institution":
        return set(tree), None
    if caller.scope.kind == "college":
        shown = tree_rules.descendants(caller.scope.ids, tree)
        return shown, {c for c in shown if tree[c].kind == tree_rules.CLASS}
    if caller.scope.kind == "classes":
        classes = {c for c in caller.scope.ids if c in tree}
        shown = set(classes)
        for code in classes:
            shown.update(tree_rules.ancestors(code, tree))
        return {c for c in shown if c in tree}, classes
    return set(), set()


def list_org_units(db: Database, caller: Caller) -> dict[str, Any]:
    """The tree in the caller's scope, depth first, with on-campus students per unit (classes' counts
    rolled up; a counselor's college shows only their classes' students) and whether each may be
    deleted now."""
    caller.require_role(*READERS)
    with db.reading() as s:
        tree = _tree(s)
        shown, counted = _visible(caller, tree)
        if not shown:
            return {"items": [], "may_edit": False, "entry_years": _years()}
        on_campus = func.sum(case((Student.status.in_(ON_CAMPUS), 1), else_=0))
        query = select(Student.class_code, on_campus, func.count()).group_by(Student.class_code)
        if counted is not None:
            query = query.where(Student.class_code.in_(sorted(counted)))
        present: dict[str, int] = {}
        ever: dict[str, int] = {}
        for code, here, total in s.execute(query):
            present[code], ever[code] = int(here or 0), int(total)
        visible_tree = {c: u for c, u in tree.items() if c in shown}
        totals = tree_rules.rolled_up(visible_tree, present)
        children: dict[str, int] = {}
        for unit in tree.values():  # children anywhere: a unit with any child is not empty
            if unit.parent_code:
                children[unit.parent_code] = children.get(unit.parent_code, 0) + 1
        may_edit = caller.role in (*EDITORS, roles.SYSTEM)
        childless_above = [c for c in shown if not children.get(c) and tree[c].kind != tree_rules.CLASS]
        recorded = _recorded(s, childless_above) if may_edit else set()
        items = []
        for unit, depth in tree_rules.ordered(visible_tree):
            empty = not children.get(unit.code) and not ever.get(unit.code) and unit.code not in recorded
            items.append({
                **unit.as_dict(), "kind_label": tree_rules.KIND_LABELS.get(unit.kind, unit.kind), "depth": depth,
                "parent_name": tree[unit.parent_code].name if unit.parent_code in tree else "",
                "students": totals.get(unit.code, 0), "children": children.get(unit.code, 0),
                "deletable": may_edit and empty,
            })
    return {"items": items, "may_edit": may_edit, "entry_years": _years()}


def _years() -> list[int]:
    """Entry years a new class may have (the form's choices), newest first."""
    years = tree_rules.entry_year_range(datetime.now(UTC).year)
    return list(reversed(years))[:10]


def _recorded(s: Session, codes: list[str]) -> set[str]:
    """Of college/major `codes`, those some student's record names (its college or major code)."""
    if not codes:
        return set()
    found = set(s.scalars(select(Student.college_code).where(Student.college_code.in_(codes)).distinct()))
    found |= set(s.scalars(select(Student.major_code).where(Student.major_code.in_(codes)).distinct()))
    return found


def _students_ever(s: Session, code: str) -> int:
    return s.scalar(select(func.count()).select_from(Student).where(or_(
        Student.class_code == code, Student.college_code == code, Student.major_code == code))) or 0


def delete_org_unit(db: Database, caller: Caller, code: str) -> dict[str, Any]:
    """Delete a unit nothing hangs on: no units under it, no student ever recorded in it."""
    caller.require_role(*EDITORS)
    code = str(code or "").strip()
    with db.transaction() as s:
        row = s.get(OrgUnit, code, with_for_update=True)
        if row is None:
            raise NotFound(f"组织单位 {code} 不存在")
        unit = _unit(row)
        children = s.scalar(select(func.count()).select_from(OrgUnit).where(OrgUnit.parent_code == code)) or 0
        why = tree_rules.deletion_refusal(unit, children, _students_ever(s, code))
        if why:
            raise Conflict(why, "code")
        s.delete(row)
        audit(s, caller, "org.delete", code, unit.as_dict(), None, chain=True)
        _publish(s, caller, [], [code])
    return {"deleted": code}



# ---- 导入: units from a sheet (services/common/sheets.py), preview then apply ----------------------------

KIND_BY_LABEL = {label: kind for kind, label in tree_rules.KIND_LABELS.items()}
COLUMNS = [
    Column("kind", "类型", required=True, choices=tuple(tree_rules.KIND_LABELS.values()), width=8,
           note="学院、专业或班级"),
    Column("code", "代码", required=True, text=True, width=14,
           note="学院 2 位；专业 = 学院代码 + 2 位；班级 = 入学年份 + 专业代码 + 2 位班号（共 10 位）"),
    Column("name", "名称", required=True, width=24, note="不超过 64 个字"),
    Column("parent_code", "上级代码", text=True, width=14,
           note="学院不填；专业填所属学院代码；班级填所属专业代码。已有单位填新的上级即调整上级（代码不变）"),
]
HEADERS = {c.key: c.header for c in COLUMNS}
LETTERS = {c.key: column_letter(COLUMNS, c.key) for c in COLUMNS}
NEW, CHANGED, UNCHANGED = "new", "changed", "unchanged"
OUTCOME_LABELS = {NEW: "新增", CHANGED: "修改", UNCHANGED: "无变化"}
MAX_LISTED = 500


def org_units_template(db: Database, caller: Caller) -> dict[str, str]:
    caller.require_role(*EDITORS)
    content = template(COLUMNS, "组织机构", {"kind": "班级", "code": "2026010101", "name": "计科2601",
                                           "parent_code": "0101"})
    return {"filename": "组织机构导入模板.xlsx", "content": base64.b64encode(content).decode("ascii")}


def _sheet(content: str) -> tuple[bytes, list[tuple[int, dict[str, str]]]]:
    try:
        data = base64.b64decode(content, validate=True)
    except (ValueError, TypeError):
        raise Invalid("上传内容不是有效的文件", "file") from None
    rows = list(read_rows(data, COLUMNS))
    if not rows:
        raise Invalid("文件中没有数据行", "file")
    return data, [(n, {**r, "kind": KIND_BY_LABEL.get(r["kind"], r["kind"])}) for n, r in rows]


def _outcome(unit: Unit, before: Unit | None) -> str:
    if before is None:
        return NEW
    return UNCHANGED if (before.name, before.parent_code) == (unit.name, unit.parent_code) else CHANGED


def _checked(s: Session, data: bytes, rows: list[tuple[int, dict[str, str]]]) -> tuple[dict[str, Any], list[Unit]]:
    """The sheet checked against the tree: the answer pages show, and the units to write (new or changed)."""
    existing = _tree(s)
    saved, problems = tree_rules.check_save([r for _, r in rows], existing, datetime.now(UTC).year)
    errors = sorted((CellError(rows[p.index][0], LETTERS[p.field], HEADERS[p.field], rows[p.index][1][p.field],
                               p.message) for p in problems), key=lambda e: (e.row, e.column))
    last_row = {r["code"]: n for n, r in rows}
    views = [{"row": last_row[u.code], **u.as_dict(), "kind_label": tree_rules.KIND_LABELS[u.kind],
              "outcome": (o := _outcome(u, existing.get(u.code))), "outcome_label": OUTCOME_LABELS[o]}
             for u in saved] if not errors else []
    counts = {key: sum(1 for v in views if v["outcome"] == key) for key in OUTCOME_LABELS}
    answer = {
        "ok": not errors, "count": len(rows), "rows": views[:MAX_LISTED], **counts,
        "error_count": len(errors), "error_rows": len({e.row for e in errors}),
        "errors": [{"row": e.row, "column": e.column, "header": e.header, "value": str(e.value or ""),
                    "message": e.message} for e in errors[:MAX_LISTED]],
        "annotated": base64.b64encode(annotate(data, COLUMNS, errors)).decode("ascii") if errors else None,
    }
    return answer, [u for u in saved if _outcome(u, existing.get(u.code)) != UNCHANGED]


def preview_org_units_import(db: Database, caller: Caller, content: str) -> dict[str, Any]:
    """What the sheet would add or change, with every problem (cells marked); changes nothing."""
    caller.require_role(*EDITORS)
    data, rows = _sheet(content)
    with db.reading() as s:
        return _checked(s, data, rows)[0]


def apply_org_units_import(db: Database, caller: Caller, content: str) -> dict[str, Any]:
    """Every row or, with any problem, none (the preview's answer then). Rows that change nothing are not
    written: the same file again changes nothing."""
    caller.require_role(*EDITORS)
    data, rows = _sheet(content)
    with db.transaction() as s:
        answer, changes = _checked(s, data, rows)
        if answer["ok"] and changes:
            _save(s, caller, _tree(s), changes)
    return {**answer, "applied": bool(answer["ok"])}
