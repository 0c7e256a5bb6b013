"""The org tree (college → major → class) and its codes (R6): what a save of units must satisfy,
when a unit may be deleted, and the tree as a page shows it (order, depth, counts rolled up).

Codes (R6, the digits of a student number): college 2 digits; major = its college's code + 2 digits;
class = entry year (4) + major code (4) + class number (2). The code is given once, on creation, and
must then agree with the parent. A later reorganisation may move a unit under another parent of the
right kind: codes — and so the students' numbers — are kept, so a class may sit in a college its code
does not name (identity's `domain/org.py` reads the tree, not the digits, for known classes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

COLLEGE, MAJOR, CLASS = "college", "major", "class"
KINDS = (COLLEGE, MAJOR, CLASS)
KIND_LABELS = {COLLEGE: "学院", MAJOR: "专业", CLASS: "班级"}
PARENT_KIND: dict[str, str | None] = {COLLEGE: None, MAJOR: COLLEGE, CLASS: MAJOR}
CODE_LENGTH = {COLLEGE: 2, MAJOR: 4, CLASS: 10}
NAME_MAX = 64
# A class's code starts with its intake's year: the register's oldest records to next autumn's intake.
FIRST_ENTRY_YEAR = 1950


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: str
    parent_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "kind": self.kind, "parent_code": self.parent_code}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one unit of a save: the unit's code, the input it concerns, why."""

    code: str
    field: str
    message: str
    index: int = -1  # the unit's position in the save (a sheet's row)

    def __str__(self) -> str:
        return f"{self.code or '（未填代码）'} {self.message}"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_unit(raw: Mapping[str, Any]) -> Unit:
    """A unit as sent (JSON, form): text trimmed, an empty parent is none."""
    return Unit(code=_text(raw.get("code")), name=_text(raw.get("name")), kind=_text(raw.get("kind")),
                parent_code=_text(raw.get("parent_code")) or None)


def entry_year_range(this_year: int) -> range:
    return range(FIRST_ENTRY_YEAR, this_year + 2)


def code_shape_problem(kind: str, code: str, this_year: int) -> str | None:
    """Why `code` cannot be the code of a `kind` (R6), or None."""
    length = CODE_LENGTH[kind]
    if not (len(code) == length and code.isdigit()):
        return f"{KIND_LABELS[kind]}代码应为 {length} 位数字"
    if kind == CLASS and int(code[:4]) not in entry_year_range(this_year):
        years = entry_year_range(this_year)
        return f"班级代码的前 4 位应为入学年份（{years[0]}–{years[-1]}），不是 {code[:4]}"
    return None


def _shape(unit: Unit, existing: Unit | None, this_year: int) -> list[Problem]:
    problems = []
    if unit.kind not in KINDS:
        return [Problem(unit.code, "kind", "组织单位类型应为学院、专业或班级（college/major/class）")]
    if existing is not None and existing.kind != unit.kind:
        problems.append(Problem(unit.code, "kind",
                                f"已有单位的类型不能修改（现为{KIND_LABELS.get(existing.kind, existing.kind)}）"))
    if not unit.name:
        problems.append(Problem(unit.code, "name", "请填写名称"))
    elif len(unit.name) > NAME_MAX:
        problems.append(Problem(unit.code, "name", f"名称不能超过 {NAME_MAX} 个字"))
    if not unit.code:
        problems.append(Problem(unit.code, "code", "请填写代码"))
    elif existing is None and (why := code_shape_problem(unit.kind, unit.code, this_year)):
        problems.append(Problem(unit.code, "code", why))  # an existing code was accepted when created
    return problems


def _parent(unit: Unit, existing: Unit | None, tree: Mapping[str, Unit]) -> list[Problem]:
    wanted = PARENT_KIND[unit.kind]
    label = KIND_LABELS[unit.kind]
    if wanted is None:
        if unit.parent_code:
            return [Problem(unit.code, "parent_code", f"{label}没有上级单位")]
        return []
    if not unit.parent_code:
        return [Problem(unit.code, "parent_code", f"请选择{label}所属的{KIND_LABELS[wanted]}")]
    if unit.parent_code == unit.code:
        return [Problem(unit.code, "parent_code", "上级单位不能是本单位")]
    parent = tree.get(unit.parent_code)
    if parent is None:
        return [Problem(unit.code, "parent_code", f"上级单位 {unit.parent_code} 不存在")]
    if parent.kind != wanted:
        return [Problem(unit.code, "parent_code", f"{label}的上级应为{KIND_LABELS[wanted]}，"
                                                  f"{parent.code} 是{KIND_LABELS.get(parent.kind, parent.kind)}")]
    if existing is None and not _code_agrees(unit, parent):
        if unit.kind == MAJOR:
            why = f"新专业的代码应以所属学院的代码 {parent.code} 开头"
        else:
            why = f"新班级代码的第 5–8 位应为所属专业的代码 {parent.code}"
        return [Problem(unit.code, "code", why)]
    return []


def _code_agrees(unit: Unit, parent: Unit) -> bool:
    """On creation the code names its parent (R6); reorganisations later keep the code."""
    if unit.kind == MAJOR:
        return unit.code[:2] == parent.code
    return unit.code[4:8] == parent.code


def _cycle(code: str, tree: Mapping[str, Unit]) -> bool:
    """Whether following parents from `code` comes back to a unit already passed."""
    seen: set[str] = set()
    current: str | None = code
    while current is not None and current in tree:
        if current in seen:
            return True
        seen.add(current)
        current = tree[current].parent_code
    return False


def check_save(raw_units: Iterable[Mapping[str, Any]], existing: Mapping[str, Unit],
               this_year: int) -> tuple[list[Unit], list[Problem]]:
    """The units of one save, in order, and every problem with them (empty: the save may go ahead).

    A parent may be saved already or come anywhere in the same save; a code given twice: the last
    one wins, and each is checked. Each unit is checked against the tree as it will be after the save.
    """
    units = [parse_unit(raw) for raw in raw_units]
    tree: dict[str, Unit] = dict(existing)
    for unit in units:
        if unit.code and unit.kind in KINDS:
            tree[unit.code] = unit
    problems: list[Problem] = []
    for index, unit in enumerate(units):
        before = existing.get(unit.code)
        found = _shape(unit, before, this_year)
        if unit.kind in KINDS and not any(p.field == "kind" for p in found):
            found += _parent(unit, before, tree)
        problems += [replace(p, index=index) for p in found]
    # Every parent is one level up, so a loop cannot pass the checks above; kept as the last guard.
    if not problems:
        problems += [Problem(u.code, "parent_code", "上级关系形成了循环", i) for i, u in enumerate(units)
                     if _cycle(u.code, tree)]
    latest = {unit.code: unit for unit in units}
    return list(latest.values()), problems


def taken_code(raw_units: Iterable[Mapping[str, Any]], existing: Mapping[str, Unit]) -> str | None:
    """For a save meant to add units only (a 新增 form): why the first code already in use may not be
    given again — saving it would quietly change the unit that holds it. None when every code is new."""
    for unit in map(parse_unit, raw_units):
        holder = existing.get(unit.code)
        if holder is not None:
            return f"代码 {unit.code} 已被{KIND_LABELS.get(holder.kind, holder.kind)}“{holder.name}”使用"
    return None


def deletion_refusal(unit: Unit, children: int, students_ever: int) -> str | None:
    """A unit may go only while nothing hangs on it: no units under it, no student ever recorded in it
    (a student who left keeps their class and college in the register)."""
    label = KIND_LABELS.get(unit.kind, unit.kind)
    if children:
        return f"{label} {unit.code} 下还有 {children} 个下级单位，不能删除"
    if students_ever:
        return f"{label} {unit.code} 有 {students_ever} 名学生的学籍记录（含已离校），不能删除"
    return None


def ancestors(code: str, tree: Mapping[str, Unit]) -> list[str]:
    """The parents above `code`, nearest first (stops at a missing unit or a loop)."""
    found: list[str] = []
    current = tree.get(code)
    while current is not None and current.parent_code and current.parent_code not in found:
        found.append(current.parent_code)
        current = tree.get(current.parent_code)
    return found


def descendants(codes: Iterable[str], tree: Mapping[str, Unit]) -> set[str]:
    """`codes` and every unit under them."""
    children: dict[str, list[str]] = {}
    for unit in tree.values():
        if unit.parent_code:
            children.setdefault(unit.parent_code, []).append(unit.code)
    found: set[str] = set()
    stack = [c for c in codes if c in tree]
    while stack:
        code = stack.pop()
        if code not in found:
            found.add(code)
            stack += children.get(code, [])
    return found


def rolled_up(tree: Mapping[str, Unit], by_class: Mapping[str, int]) -> dict[str, int]:
    """Each unit's count: its classes' counts, added up the tree (a class counts once per ancestor)."""
    totals = dict.fromkeys(tree, 0)
    for code, count in by_class.items():
        if code not in tree:
            continue
        totals[code] += count
        for parent in ancestors(code, tree):
            if parent in totals:
                totals[parent] += count
    return totals


def ordered(tree: Mapping[str, Unit]) -> list[tuple[Unit, int]]:
    """The units depth first (each level by code) with their depth; a unit whose parent is not in
    `tree` starts a branch of its own, after the colleges."""
    children: dict[str | None, list[Unit]] = {}
    for unit in tree.values():
        parent = unit.parent_code if unit.parent_code in tree else None
        children.setdefault(parent, []).append(unit)
    roots = sorted(children.get(None, []), key=lambda u: (u.kind != COLLEGE, u.code))
    rows: list[tuple[Unit, int]] = []
    seen: set[str] = set()
    # Units only reachable from each other (data older than these checks) start branches of their own.
    stragglers = sorted(tree.values(), key=lambda u: u.code)
    for root in roots + stragglers:
        stack = [(root, 0)]
        while stack:
            unit, depth = stack.pop()
            if unit.code in seen:
                continue
            seen.add(unit.code)
            rows.append((unit, depth))
            stack += [(child, depth + 1)
                      for child in sorted(children.get(unit.code, []), key=lambda u: u.code, reverse=True)]
    return rows
