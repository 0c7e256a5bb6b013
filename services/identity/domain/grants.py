"""Grants: which role an account holds over which data (I6), and who may hand them out.

An account may hold several grants; each is one role over one scope. Granting is checked
against the granter's own grant: nobody can give more than they have (a deputy secretary
can make a counselor only over classes of their own college), unlike frameworks where any
administrator may hand out any data scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.identity.domain.accounts import (
    AUTHORITY,
    COUNSELOR,
    DEPUTY_SECRETARY,
    INSTITUTION_ROLES,
    SCOPE_ID,
    SCOPE_KIND_OF_ROLE,
    STUDENT,
    STUDENT_AFFAIRS,
    SYSTEM,
    Viewer,
)
from services.identity.domain.org import NO_TREE, Tree, class_college, college_of_class

# Roles a grant can carry: every staff role. Students hold their own record implicitly.
GRANTABLE_ROLES = frozenset({COUNSELOR, DEPUTY_SECRETARY, AUTHORITY, *INSTITUTION_ROLES})
# Only the system (deployment, CLI) creates authority accounts: their area is not the school's to give.
SYSTEM_ONLY_ROLES = frozenset({AUTHORITY})


@dataclass(frozen=True)
class Grant:
    role: str
    scope_kind: str
    scope_ids: tuple[str, ...] = ()


def grant_problems(grant: Grant) -> list[str]:
    """What is wrong with the grant itself, whoever gives it; empty when fine."""
    if grant.role == STUDENT:
        return ["学生角色随学籍自动授予，不能手工授权"]
    if grant.role not in GRANTABLE_ROLES:
        return [f"未知角色：{grant.role}"]
    problems = []
    expected = SCOPE_KIND_OF_ROLE[grant.role]
    if grant.scope_kind != expected:
        problems.append(f"该角色的数据范围应为 {expected}")
    elif expected == "institution":
        if grant.scope_ids:
            problems.append("全校范围不需要指定单位")
    elif not grant.scope_ids:
        problems.append("请指定数据范围内的单位")
    bad = [i for i in grant.scope_ids if not SCOPE_ID.fullmatch(i)]
    if bad:
        problems.append(f"数据范围代码不正确：{'、'.join(bad[:5])}")
    if len(set(grant.scope_ids)) != len(grant.scope_ids):
        problems.append("数据范围中有重复的单位")
    if grant.scope_kind == "classes":
        unknown = [c for c in grant.scope_ids if college_of_class(c) is None]
        if unknown:
            problems.append(f"班级代码应为10位数字：{'、'.join(unknown[:5])}")
    return problems


def within_granter_scope(granter: Viewer, grant: Grant, tree: Tree = NO_TREE) -> bool:
    """May `granter` give (or take back) `grant`? Student affairs: any staff grant of the
    institution; a deputy secretary: counselor grants over classes of their own college
    (the class's college from `tree`, roster's org units, see domain/org.py); the system:
    anything; everyone else: nothing."""
    if granter.role == SYSTEM:
        return True
    if grant.role in SYSTEM_ONLY_ROLES:
        return False
    if granter.role == STUDENT_AFFAIRS and granter.scope_kind == "institution":
        return True
    if granter.role == DEPUTY_SECRETARY and grant.role == COUNSELOR and grant.scope_kind == "classes":
        return bool(grant.scope_ids) and all(class_college(c, tree) in granter.scope_ids for c in grant.scope_ids)
    return False


def may_grant(granter: Viewer, grantee: str, grant: Grant, tree: Tree = NO_TREE) -> str | None:
    """Why `granter` may not give `grant` to `grantee`, or None when they may."""
    if granter.role != SYSTEM and granter.username == grantee:
        return "不能给自己授权"
    if not within_granter_scope(granter, grant, tree):
        return "授权超出了您本人的角色或数据范围"
    return None


def effective_scope(role: str, grants: Sequence[Grant]) -> tuple[str, tuple[str, ...]] | None:
    """The caller scope of `role` over all the account's grants of that role: the units of
    every such grant together (a counselor with two grants sees both sets of classes)."""
    mine = [g for g in grants if g.role == role]
    if not mine:
        return None
    ids: dict[str, None] = {}
    for g in mine:
        ids.update(dict.fromkeys(g.scope_ids))
    return mine[0].scope_kind, tuple(ids)
