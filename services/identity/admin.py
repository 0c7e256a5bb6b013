"""Account administration and self-service use cases: search, disable/enable, resets with a
one-time password, initial passwords for new students, unlocking, own sessions and login
history, online sessions and forced logout."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import STUDENT, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid, NotFound
from services.identity import handlers as h
from services.identity import org
from services.identity.adapters.orm import (
    Account,
    AccountGrant,
    AccountRename,
    LoginAttempt,
    LoginSession,
    Student,
)
from services.identity.domain import accounts as rules
from services.identity.domain import grants as grant_rules
from services.identity.domain.org import class_college
from services.identity.domain.passwords import hash_password, temporary_password
from services.identity.domain.sessions import is_idle_expired

MAX_PER_PAGE = 100
MAX_LOGINS = 200
LOGIN_RESULT_LABELS = {"ok": "成功", "bad_credentials": "用户名或密码错误", "locked": "账号锁定",
                       "disabled": "账号停用"}


def _page_args(page: Any, per_page: Any) -> tuple[int, int]:
    try:
        page, per_page = int(page), int(per_page)
    except (TypeError, ValueError):
        raise Invalid("页码和每页条数必须是整数") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise Invalid(f"页码从 1 开始，每页条数在 1 到 {MAX_PER_PAGE} 之间")
    return page, per_page


def _require_admin(caller: Caller) -> rules.Viewer:
    viewer = h._viewer(caller)
    if not rules.administers_accounts(viewer):
        raise Forbidden("只有学生处可以管理账号")
    return viewer


def _admin_target(s: Session, username: Any) -> Account:
    row = s.get(Account, username, with_for_update=True) if isinstance(username, str) and username else None
    if row is None:
        raise NotFound(h.NO_ACCOUNT)
    return row


# --- search -----------------------------------------------------------------------

def search_accounts(db: Database, caller: Caller, q: Any = "", page: Any = 1, per_page: Any = 20,
                    active: bool | None = None) -> dict[str, Any]:
    """Administrators search every account; counselors and deputy secretaries the accounts of
    the students in their scope; nobody else may list accounts."""
    viewer = h._viewer(caller)
    page, per_page = _page_args(page, per_page)
    text = q.strip()[:64] if isinstance(q, str) else ""
    stmt = select(Account)
    if rules.administers_accounts(viewer):
        pass
    elif viewer.role in rules.SEES_STUDENTS_IN_SCOPE and viewer.scope_kind in ("classes", "college"):
        column = Student.class_code if viewer.scope_kind == "classes" else Student.college_code
        mine = and_(Account.role == STUDENT, column.in_(viewer.scope_ids))
        if viewer.role == rules.DEPUTY_SECRETARY:  # and the counselors they can grant to
            with db.reading() as s:
                counselors = _counselors_in(s, viewer)
            mine = or_(mine, Account.username.in_(counselors))
        stmt = stmt.outerjoin(Student, Student.student_number == Account.username).where(mine)
    else:
        raise Forbidden("无权查询账号")
    if text:
        like = f"%{text.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(or_(Account.username.like(like), Account.display_name.like(like)))
    if active is not None:
        stmt = stmt.where(Account.active.is_(bool(active)))
    with db.reading() as s:
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.scalars(stmt.order_by(Account.username).offset((page - 1) * per_page).limit(per_page)).all()
        items = [{**h.account_view(r, h.active_grants(s, r.username)),
                  "locked": bool(r.locked_until and r.locked_until > h._now()),
                  "has_password": r.password_hash is not None} for r in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def _counselors_in(s: Session, viewer: rules.Viewer) -> list[str]:
    """Accounts holding a counselor grant the deputy secretary could give (classes of their college)."""
    rows = list(s.scalars(select(AccountGrant).where(AccountGrant.role == rules.COUNSELOR,
                                                     AccountGrant.revoked_at.is_(None))))
    tree = org.tree_of(s, {c for g in rows for c in g.scope_id_list})
    return sorted({g.username for g in rows if grant_rules.within_granter_scope(
        viewer, grant_rules.Grant(g.role, g.scope_kind, tuple(g.scope_id_list)), tree)})


# --- edit, disable / enable / unlock (I2) ------------------------------------------

def edit_account(db: Database, caller: Caller, username: Any, display_name: Any) -> dict[str, Any]:
    """Correct a staff or authority account's name; students' names come from roster."""
    _require_admin(caller)
    if not isinstance(display_name, str):
        raise Invalid("请填写姓名")
    problem = rules.display_name_problem(display_name)
    if problem:
        raise Invalid(problem)
    with db.transaction() as s:
        row = _admin_target(s, username)
        refusal = rules.edit_refusal(row.role)
        if refusal:
            raise Invalid(refusal)
        before = row.snapshot()
        row.display_name = display_name.strip()
        row.updated_at = h._now()
        audit(s, caller, "account.edit", row.username, before, row.snapshot())
        return h.account_view(row, h.active_grants(s, row.username))


def disable_account(db: Database, caller: Caller, username: Any, reason: Any = "") -> dict[str, Any]:
    """Disabled, never deleted (I2); every open session of the account ends at once."""
    _require_admin(caller)
    why = reason.strip()[:200] if isinstance(reason, str) else ""
    if not why:
        raise Invalid("请填写停用原因")
    if username == caller.username:
        raise Forbidden("不能停用自己的账号")
    now = h._now()
    with db.transaction() as s:
        row = _admin_target(s, username)
        before = row.snapshot()
        row.active = False
        row.deactivated_reason = why
        row.updated_at = now
        ended = h._end_sessions(s, row.username, now)
        audit(s, caller, "account.disable", row.username, before, {**row.snapshot(), "sessions_ended": ended})
        return h.account_view(row, h.active_grants(s, row.username))


def enable_account(db: Database, caller: Caller, username: Any) -> dict[str, Any]:
    _require_admin(caller)
    now = h._now()
    with db.transaction() as s:
        row = _admin_target(s, username)
        if row.role == STUDENT:
            student = s.get(Student, row.username)
            if student is not None and student.left:
                raise Invalid("该学生已离校，账号随学籍状态停用，不能手工启用")
        before = row.snapshot()
        row.active = True
        row.deactivated_reason = None
        row.deactivated_by_event = None
        row.updated_at = now
        audit(s, caller, "account.enable", row.username, before, row.snapshot())
        return h.account_view(row, h.active_grants(s, row.username))


def unlock_account(db: Database, caller: Caller, username: Any) -> dict[str, Any]:
    """Ends a lockout after failed logins (the login log's 解锁)."""
    _require_admin(caller)
    with db.transaction() as s:
        row = _admin_target(s, username)
        before = {"failed_logins": row.failed_logins, "locked_until": row.locked_until and row.locked_until.isoformat()}
        row.failed_logins, row.locked_until = 0, None
        row.updated_at = h._now()
        audit(s, caller, "account.unlock", row.username, before, {"failed_logins": 0, "locked_until": None})
        return h.account_view(row, h.active_grants(s, row.username))


# --- resets and initial passwords (I3, I4) ----------------------------------------

def reset_password(db: Database, caller: Caller, username: Any) -> dict[str, Any]:
    """A one-time temporary password, shown once to the operator; the owner must change it at
    next login; the account is unlocked and its sessions end. Counselors reset their students,
    the student affairs office staff (I4); nobody else."""
    if not isinstance(username, str) or not username:
        raise NotFound(h.NO_ACCOUNT)
    h.check_may_reset(db, caller, username)
    temporary = temporary_password()
    view = h._replace_password(db, caller, username, h._off_hub(hash_password, temporary),
                               "account.reset_password", {"temporary": True})
    return {**view, "temporary_password": temporary}


def issue_initial_passwords(db: Database, caller: Caller, class_code: Any = None) -> dict[str, Any]:
    """Initial passwords for the students in the caller's scope whose accounts have none yet
    (accounts made from roster's student.registered start without one, I5). Each is one-time:
    changed at first login. Returned once, for the counselor's distribution sheet."""
    viewer = h._viewer(caller)
    if viewer.role not in (*rules.SEES_STUDENTS_IN_SCOPE, rules.SYSTEM):
        raise Forbidden("只有辅导员或党总支副书记可以生成学生初始密码")
    stmt = (select(Account, Student).join(Student, Student.student_number == Account.username)
            .where(Account.role == STUDENT, Account.password_hash.is_(None), Account.active.is_(True)))
    if viewer.role != rules.SYSTEM:
        column = Student.class_code if viewer.scope_kind == "classes" else Student.college_code
        stmt = stmt.where(column.in_(viewer.scope_ids))
    if isinstance(class_code, str) and class_code:
        with db.reading() as s:
            college = class_college(class_code, org.tree_of(s, [class_code]))
        place = rules.StudentPlace(college or "", class_code)
        if viewer.role != rules.SYSTEM and not rules.may_view_account(viewer, "", STUDENT, place):
            raise Forbidden(f"班级 {class_code} 不在您的数据权限范围内")
        stmt = stmt.where(Student.class_code == class_code)
    with db.reading() as s:
        pending = [(a.username, st.name, st.class_code) for a, st in
                   s.execute(stmt.order_by(Student.class_code, Account.username)).all()]
    issued = [(number, name, klass, temporary_password()) for number, name, klass in pending]
    hashes = {number: h._off_hub(hash_password, pw) for number, _, _, pw in issued}
    now = h._now()
    rows = []
    with db.transaction() as s:
        for number, name, klass, password in issued:
            row = s.get(Account, number, with_for_update=True)
            if row is None or row.password_hash is not None:  # set meanwhile: leave it
                continue
            h.store_password(s, row, hashes[number], now)
            row.must_change_password = True
            audit(s, caller, "account.initial_password", number, None, {"class_code": klass})
            rows.append({"student_number": number, "name": name, "class_code": klass,
                         "initial_password": password})
    return {"items": rows, "count": len(rows)}


# --- sessions and login history ---------------------------------------------------

def _session_view(row: LoginSession, current: str | None) -> dict[str, Any]:
    return {"id_hint": row.id[:6], "username": row.username, "created_at": row.created_at.isoformat(),
            "last_seen_at": row.last_seen_at.isoformat(), "remote_addr": row.remote_addr,
            "role": row.role, "current": row.id == current, "ref": _ref(row.id)}


def _ref(session_id: str) -> str:
    """What a page may hold to name a session: a digest, never the session id itself."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:16]


def _open_sessions(s: Session, now: datetime, username: str | None = None) -> list[LoginSession]:
    stmt = select(LoginSession).where(LoginSession.ended_at.is_(None))
    if username is not None:
        stmt = stmt.where(LoginSession.username == username)
    rows = s.scalars(stmt.order_by(LoginSession.last_seen_at.desc())).all()
    return [r for r in rows if not is_idle_expired(r.last_seen_at, now, h._idle_timeout())]


def my_sessions(db: Database, caller: Caller) -> dict[str, Any]:
    now = h._now()
    with db.reading() as s:
        return {"items": [_session_view(r, caller.session_id) for r in _open_sessions(s, now, caller.username)]}


def end_my_session(db: Database, caller: Caller, ref: Any) -> dict[str, int]:
    """End one of the caller's own other sessions (e.g. a browser left signed in elsewhere)."""
    now = h._now()
    with db.transaction() as s:
        for row in _open_sessions(s, now, caller.username):
            if _ref(row.id) == ref:
                row.ended_at = now
                audit(s, caller, "session.end", caller.username, None, {"session": ref})
                return {"ended": 1}
    raise NotFound("会话不存在或已结束")


def _names_of(s: Session, username: str) -> list[str]:
    """The account's name and every earlier name it had (student-number changes, I5)."""
    names, frontier = [username], [username]
    while frontier:
        older = list(s.scalars(select(AccountRename.old_username)
                               .where(AccountRename.new_username.in_(frontier))))
        frontier = [n for n in older if n not in names]
        names += frontier
    return names


def _attempt_view(row: LoginAttempt) -> dict[str, Any]:
    return {"username": row.username, "at": row.at.isoformat(), "remote_addr": row.remote_addr,
            "result": row.result, "result_label": LOGIN_RESULT_LABELS.get(row.result, row.result)}


def my_logins(db: Database, caller: Caller, limit: Any = 50) -> dict[str, Any]:
    count = max(1, min(int(limit) if isinstance(limit, int) else 50, MAX_LOGINS))
    with db.reading() as s:
        names = _names_of(s, caller.username)
        rows = s.scalars(select(LoginAttempt).where(LoginAttempt.username.in_(names))
                         .order_by(LoginAttempt.id.desc()).limit(count))
        return {"items": [_attempt_view(r) for r in rows]}


def login_log(db: Database, caller: Caller, q: Any = "", page: Any = 1, per_page: Any = 20) -> dict[str, Any]:
    """Every login attempt (who, when, from where, result), for the student affairs office."""
    caller.require_role(STUDENT_AFFAIRS)
    page, per_page = _page_args(page, per_page)
    stmt = select(LoginAttempt)
    if isinstance(q, str) and q.strip():
        stmt = stmt.where(LoginAttempt.username == q.strip()[:64])
    with db.reading() as s:
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.scalars(stmt.order_by(LoginAttempt.id.desc()).offset((page - 1) * per_page).limit(per_page))
        return {"items": [_attempt_view(r) for r in rows], "total": total, "page": page, "per_page": per_page}


def online_sessions(db: Database, caller: Caller) -> dict[str, Any]:
    caller.require_role(STUDENT_AFFAIRS)
    now = h._now()
    with db.reading() as s:
        return {"items": [_session_view(r, caller.session_id) for r in _open_sessions(s, now)]}


def force_logout(db: Database, caller: Caller, username: Any) -> dict[str, int]:
    """End every session of an account (强制下线)."""
    _require_admin(caller)
    now = h._now()
    with db.transaction() as s:
        row = _admin_target(s, username)
        ended = s.execute(update(LoginSession).where(LoginSession.username == row.username,
                                                     LoginSession.ended_at.is_(None))
                          .values(ended_at=now)).rowcount or 0
        audit(s, caller, "session.force_logout", row.username, None, {"sessions_ended": ended})
        return {"ended": ended}
