"""Roster's org tree as identity knows it (read model `org_units`, fed by `org.units_changed`):
the part of it a grant or scope decision needs, and the list the account pages offer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.caller import STUDENT, Caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.identity.adapters.orm import OrgUnit
from services.identity.domain.org import Tree, college_in_tree

KINDS = ("college", "major", "class")


def tree_of(s: Session, codes: Iterable[str]) -> Tree:
    """The known units among `codes` and their ancestors: one IN query per level
    (class → major → college), so a decision never loads the whole tree."""
    tree: dict[str, tuple[str, str | None]] = {}
    wanted = {c for c in codes if c}
    while wanted:
        rows = s.execute(select(OrgUnit.code, OrgUnit.kind, OrgUnit.parent_code)
                         .where(OrgUnit.code.in_(sorted(wanted)))).all()
        tree.update({code: (kind, parent) for code, kind, parent in rows})
        wanted = {parent for _, _, parent in rows if parent and parent not in tree}
    return tree


def org_units(db: Database, caller: Caller, kind: Any = "") -> dict[str, Any]:
    """Units (all, or of one kind) with their college, for staff choosing scopes; not students."""
    if caller.role == STUDENT:
        raise Forbidden("学生不能查询组织机构")
    if kind not in ("", *KINDS):
        raise Invalid("组织单位类型应为 college/major/class")
    with db.reading() as s:
        rows = s.execute(select(OrgUnit.code, OrgUnit.name, OrgUnit.kind, OrgUnit.parent_code)
                         .order_by(OrgUnit.code)).all()
    tree = {code: (k, parent) for code, _, k, parent in rows}
    return {"items": [{"code": code, "name": name, "kind": k, "parent_code": parent,
                       "college_code": college_in_tree(code, tree)}
                      for code, name, k, parent in rows if not kind or k == kind]}
