"""Grant use cases: give and take back roles over data scopes (I6), list them, and switch
the role a session acts in. Every change is audited and ends the grantee's sessions, so
nobody keeps acting on rights they no longer have."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import STUDENT, Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.identity import handlers as h
from services.identity import org
from services.identity.adapters.orm import Account, AccountGrant, LoginSession
from services.identity.domain import accounts as rules
from services.identity.domain import grants as grant_rules

NO_GRANT = "授权不存在"


def _grant_of(row: AccountGrant) -> grant_rules.Grant:
    return grant_rules.Grant(row.role, row.scope_kind, tuple(row.scope_id_list))


def _parse(role: Any, scope_kind: Any, scope_ids: Any) -> grant_rules.Grant:
    if not isinstance(role, str) or not isinstance(scope_kind, str):
        raise Invalid("请选择角色和数据范围")
    if scope_ids is None:
        scope_ids = []
    if not isinstance(scope_ids, Sequence) or isinstance(scope_ids, str) \
            or not all(isinstance(i, str) for i in scope_ids):
        raise Invalid("数据范围单位应为代码列表")
    grant = grant_rules.Grant(role, scope_kind, tuple(i.strip() for i in scope_ids))
    problems = grant_rules.grant_problems(grant)
    if problems:
        raise Invalid("；".join(problems))
    return grant


def list_grants(db: Database, caller: Caller, username: Any) -> dict[str, Any]:
    """Self and administrators see every grant of an account; a deputy secretary sees those
    they could themselves give or take back; anyone else: Forbidden."""
    viewer = h._viewer(caller)
    with db.reading() as s:
        row = s.get(Account, username) if isinstance(username, str) and username else None
        if row is None:
            raise NotFound(h.NO_ACCOUNT) if rules.administers_accounts(viewer) else Forbidden(h.NOT_YOURS)
        grants = h.active_grants(s, row.username)
        if viewer.username != row.username and not rules.administers_accounts(viewer):
            tree = org.tree_of(s, (c for g in grants for c in g.scope_id_list))
            grants = [g for g in grants if grant_rules.within_granter_scope(viewer, _grant_of(g), tree)]
            if not grants:
                raise Forbidden(h.NOT_YOURS)
        return {"username": row.username, "display_name": row.display_name, "role": row.role,
                "items": [g.view() for g in grants]}


def _end_and_audit(s: Session, caller: Caller, action: str, account: Account, before: list[dict[str, Any]],
                   now: Any) -> dict[str, Any]:
    after = [g.view() for g in h.active_grants(s, account.username)]
    ended = h._end_sessions(s, account.username, now)
    audit(s, caller, action, account.username, {"grants": before}, {"grants": after, "sessions_ended": ended})
    return {"username": account.username, "items": after, "sessions_ended": ended}


def grant(db: Database, caller: Caller, username: Any, role: Any, scope_kind: Any, scope_ids: Any) -> dict[str, Any]:
    """Give a staff account one more grant; it may not exceed the granter's own (see domain)."""
    new = _parse(role, scope_kind, scope_ids)
    viewer = h._viewer(caller)
    if not isinstance(username, str) or not username:
        raise NotFound(h.NO_ACCOUNT)
    now = h._now()
    with db.transaction() as s:
        refusal = grant_rules.may_grant(viewer, username, new, org.tree_of(s, new.scope_ids))
        if refusal:
            raise Forbidden(refusal)
        account = s.get(Account, username, with_for_update=True)
        if account is None:
            raise NotFound(h.NO_ACCOUNT) if rules.administers_accounts(viewer) else Forbidden(h.NOT_YOURS)
        if account.role == STUDENT:
            raise Invalid("学生账号不能授予教职工角色")
        if not account.active:
            raise Invalid("账号已停用，不能授权")
        current = h.active_grants(s, username)
        if any(_grant_of(g) == new for g in current):
            raise Conflict("该账号已有相同的授权")
        before = [g.view() for g in current]
        h.add_grant(s, caller, username, new, now)
        if not any(g.role == account.role for g in current):  # its starting role had no grant left
            account.role = new.role
        account.updated_at = now
        return _end_and_audit(s, caller, "grant.add", account, before, now)


def revoke_grant(db: Database, caller: Caller, grant_id: Any) -> dict[str, Any]:
    """Take back one grant (kept, marked revoked); only someone who could give it may."""
    viewer = h._viewer(caller)
    if not isinstance(grant_id, int) or isinstance(grant_id, bool):
        raise NotFound(NO_GRANT)
    now = h._now()
    with db.transaction() as s:
        row = s.get(AccountGrant, grant_id, with_for_update=True)
        if row is None or row.revoked_at is not None:
            raise NotFound(NO_GRANT) if rules.administers_accounts(viewer) else Forbidden("无权撤销该授权")
        if row.username == caller.username and not caller.is_system():
            raise Forbidden("不能撤销自己的授权")
        if not grant_rules.within_granter_scope(viewer, _grant_of(row), org.tree_of(s, row.scope_id_list)):
            raise Forbidden("无权撤销该授权")
        account = s.get(Account, row.username, with_for_update=True)
        assert account is not None
        before = [g.view() for g in h.active_grants(s, account.username)]
        row.revoked_at, row.revoked_by = now, caller.username
        s.flush()
        remaining = h.active_grants(s, account.username)
        if remaining and not any(g.role == account.role for g in remaining):
            account.role = remaining[0].role
        account.updated_at = now
        return _end_and_audit(s, caller, "grant.revoke", account, before, now)


def switch_role(db: Database, caller: Caller, role: Any) -> dict[str, Any]:
    """The caller's session acts in another role they hold a grant of; returns the new caller."""
    if not caller.session_id:
        raise Invalid("只有登录会话可以切换角色")
    with db.transaction() as s:
        session = s.get(LoginSession, caller.session_id, with_for_update=True)
        account = s.get(Account, caller.username)
        if session is None or session.ended_at is not None or account is None:
            raise NotFound("会话不存在或已结束")
        if not any(g.role == role for g in h.active_grants(s, account.username)):
            raise Forbidden("您没有该角色的授权")
        session.role = role
        audit(s, caller, "session.switch_role", account.username, {"role": caller.role}, {"role": role})
        return h.caller_for(s, account, session.id, role).to_dict()
