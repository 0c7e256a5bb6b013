"""Identity use cases: logging in, sessions, accounts, and following roster's students."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ROLE_LABELS, STUDENT, STUDENT_AFFAIRS, Caller, Scope, ScopeKind, system_caller
from services.common.db import Database
from services.common.envelope import Envelope
from services.common.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated, XuejiError
from services.common.events import OrgUnitsChanged, StudentClassChanged, StudentRegistered, StudentStatusChanged
from services.common.health import health_report
from services.common.inbox import first_deliveries, first_delivery
from services.common.number_aliases import current_number, with_current_number, with_current_numbers
from services.common.student_copy import copy_class_change, read_copies, take_snapshot
from services.identity.adapters.orm import (
    Account,
    AccountGrant,
    LoginAttempt,
    LoginSession,
    OrgUnit,
    PasswordHistory,
    Student,
)
from services.identity.domain import accounts as rules
from services.identity.domain import grants as grant_rules
from services.identity.domain.lockout import LoginGuard, locked_message
from services.identity.domain.passwords import (
    DEFAULT_MAX_AGE_DAYS,
    HISTORY_DEPTH,
    MAX_LENGTH,
    hash_password,
    is_expired,
    needs_rehash,
    policy_problems,
    reuses_recent,
    verify_password,
)
from services.identity.domain.sessions import (
    DEFAULT_IDLE_TIMEOUT,
    TOUCH_INTERVAL,
    is_idle_expired,
    needs_touch,
    new_session_id,
)

SERVICE = "identity"

BAD_CREDENTIALS = "用户名或密码错误"  # one message for unknown user and wrong password (I3)
DISABLED = "账号已停用"
SESSION_GONE = "会话已失效，请重新登录"
NO_ACCOUNT = "账号不存在"
NOT_YOURS = "无权查看该账号"

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def _idle_timeout() -> timedelta:
    minutes = os.environ.get("IDENTITY_SESSION_IDLE_MINUTES")
    return timedelta(minutes=float(minutes)) if minutes else DEFAULT_IDLE_TIMEOUT


def _max_password_age_days() -> int:
    days = os.environ.get("IDENTITY_PASSWORD_MAX_AGE_DAYS")
    return int(days) if days else DEFAULT_MAX_AGE_DAYS


def _off_hub(fn: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy argon2 work in a real thread when under eventlet, so one login does
    not stall every other worker (and the AMQP heartbeats) of the service."""
    patcher = sys.modules.get("eventlet.patcher")  # not imported: not green (e.g. the CLI)
    if patcher is not None and patcher.is_monkey_patched("thread"):
        from eventlet import tpool

        return cast(T, tpool.execute(fn, *args))
    return fn(*args)


def _clip(value: Any, length: int) -> str | None:
    return None if value is None else str(value)[:length]


# --- views ------------------------------------------------------------------------

def active_grants(s: Session, username: str) -> list[AccountGrant]:
    return list(s.scalars(select(AccountGrant)
                          .where(AccountGrant.username == username, AccountGrant.revoked_at.is_(None))
                          .order_by(AccountGrant.id)))


def _grant_values(rows: Sequence[AccountGrant]) -> list[grant_rules.Grant]:
    return [grant_rules.Grant(g.role, g.scope_kind, tuple(g.scope_id_list)) for g in rows]


def scope_of(account: Account, grants: Sequence[AccountGrant],
             role: str | None = None) -> tuple[str, str, tuple[str, ...]]:
    """(role, scope kind, unit ids) the account acts with: students over their own record;
    staff in `role` (default: the account's) over all their grants of that role; no grant
    of that role left → no data at all."""
    role = role or account.role
    if account.role == STUDENT:
        kind, ids = rules.student_scope(account.username)
        return STUDENT, kind, ids
    scope = grant_rules.effective_scope(role, _grant_values(grants))
    return (role, *scope) if scope else (role, "none", ())


def account_view(row: Account, grants: Sequence[AccountGrant] = ()) -> dict[str, Any]:
    """An account as callers see it; never the password hash."""
    _, kind, ids = scope_of(row, grants)
    return {
        "username": row.username,
        "display_name": row.display_name,
        "role": row.role,
        "role_label": ROLE_LABELS.get(row.role, row.role),
        "active": row.active,
        "must_change_password": row.must_change_password,
        "scope": {"kind": kind, "ids": list(ids)},
    }


def caller_for(s: Session, account: Account, session_id: str | None = None, role: str | None = None) -> Caller:
    """The caller context a session stands for: its role, and the scope the account's grants
    of that role give."""
    role, kind, ids = scope_of(account, active_grants(s, account.username), role)
    return Caller(user_id=account.username, username=account.username, role=role,
                  scope=Scope(kind=cast(ScopeKind, kind), ids=ids), session_id=session_id)


def password_expired(row: Account, now: datetime) -> bool:
    return is_expired(row.password_changed_at, now, _max_password_age_days())


def recent_hashes(s: Session, username: str) -> list[str]:
    return list(s.scalars(select(PasswordHistory.password_hash).where(PasswordHistory.username == username)
                          .order_by(PasswordHistory.id.desc()).limit(HISTORY_DEPTH)))


def store_password(s: Session, row: Account, new_hash: str, now: datetime) -> None:
    """Set the account's password and keep it in the history (for the no-reuse rule)."""
    row.password_hash = new_hash
    row.password_changed_at = row.updated_at = now
    s.add(PasswordHistory(username=row.username, password_hash=new_hash, set_at=now))


def _viewer(caller: Caller) -> rules.Viewer:
    return rules.Viewer(username=caller.username, role=caller.role, scope_kind=caller.scope.kind,
                        scope_ids=tuple(caller.scope.ids))


def _end_sessions(s: Session, username: str, now: datetime, keep: str | None = None) -> int:
    """End the open sessions of an account (except `keep`); returns how many."""
    stmt = update(LoginSession).where(LoginSession.username == username, LoginSession.ended_at.is_(None))
    if keep is not None:
        stmt = stmt.where(LoginSession.id != keep)
    return s.execute(stmt.values(ended_at=now)).rowcount or 0


def health(db: Database) -> dict[str, Any]:
    return health_report(db, SERVICE, accounts=Account)


# --- logging in -------------------------------------------------------------------

def _record_attempt(s: Session, username: str, remote_addr: str | None, result: str, now: datetime) -> None:
    s.add(LoginAttempt(username=_clip(username, 64), at=now, remote_addr=_clip(remote_addr, 64),
                       result=result))


def login(db: Database, username: Any, password: Any, remote_addr: Any = None) -> dict[str, Any]:
    """Check a user name and password; open a session. Every attempt is logged.

    The password is checked outside the write transaction (argon2 takes tens of
    milliseconds), then the outcome is written with the account row locked, so
    concurrent failures all count.
    """
    name = username.strip() if isinstance(username, str) else ""
    secret = password if isinstance(password, str) else ""
    addr = _clip(remote_addr, 64)
    now = _now()
    with db.reading() as s:
        account = s.get(Account, name) if name else None
        seen_hash = account.password_hash if account else None
        guard = LoginGuard(account.failed_logins, account.locked_until) if account else LoginGuard()
    if account is not None and guard.is_locked(now):
        with db.transaction() as s:
            _record_attempt(s, name, addr, "locked", now)
        raise Unauthenticated(locked_message(guard.minutes_left(now)))
    # Empty or over-long input cannot match (the policy caps length): skip the hashing.
    usable = bool(name and secret) and len(secret) <= MAX_LENGTH
    matches = usable and _off_hub(verify_password, seen_hash, secret)

    error: XuejiError | None = None
    answer: dict[str, Any] = {}
    with db.transaction() as s:
        row = s.get(Account, name, with_for_update=True) if name else None
        if row is None:
            result, error = "bad_credentials", Unauthenticated(BAD_CREDENTIALS)
        else:
            if row.password_hash != seen_hash:  # changed since it was checked: check again
                matches = usable and _off_hub(verify_password, row.password_hash, secret)
            guard = LoginGuard(row.failed_logins, row.locked_until)
            if guard.is_locked(now):  # locked meanwhile by a concurrent attempt
                result, error = "locked", Unauthenticated(locked_message(guard.minutes_left(now)))
            elif not matches:
                guard = guard.after_failure(now)
                row.failed_logins, row.locked_until = guard.failed_logins, guard.locked_until
                result = "bad_credentials"
                # The failure that reaches the limit says so at once, with the minutes left.
                error = Unauthenticated(locked_message(guard.minutes_left(now)) if guard.is_locked(now)
                                        else BAD_CREDENTIALS)
            elif not row.active:
                result, error = "disabled", Unauthenticated(DISABLED)
            else:
                result = "ok"
                answer = _open_session(s, row, secret, addr, now)
        _record_attempt(s, name, addr, result, now)
    if error is not None:
        raise error
    return answer


def _open_session(s: Session, row: Account, password: str, addr: str | None, now: datetime) -> dict[str, Any]:
    row.failed_logins, row.locked_until = 0, None
    if row.password_hash and needs_rehash(row.password_hash):  # hashing settings were raised
        row.password_hash = hash_password(password)
    session_id = new_session_id()
    s.add(LoginSession(id=session_id, username=row.username, created_at=now, last_seen_at=now,
                       remote_addr=addr, role=row.role))
    return {"session_id": session_id, "caller": caller_for(s, row, session_id).to_dict(),
            "must_change_password": row.must_change_password or password_expired(row, now),
            "password_expired": password_expired(row, now)}


def resolve_session(db: Database, session_id: Any) -> dict[str, Any]:
    """The caller a live session stands for; ended, unknown, idle-expired sessions and
    sessions of deactivated accounts are refused."""
    if not isinstance(session_id, str) or not session_id or len(session_id) > 64:
        raise Unauthenticated(SESSION_GONE)
    now = _now()
    with db.reading() as s:
        row = s.get(LoginSession, session_id)
        account = s.get(Account, row.username) if row is not None else None
        if row is None or row.ended_at is not None or account is None or not account.active:
            raise Unauthenticated(SESSION_GONE)
        expired = is_idle_expired(row.last_seen_at, now, _idle_timeout())
        touch = needs_touch(row.last_seen_at, now)
        caller = caller_for(s, account, session_id, row.role)
        # The gateway lets such a session do nothing but change the password (I3).
        must_change = account.must_change_password or password_expired(account, now)
    if expired:
        with db.transaction() as s:
            s.execute(update(LoginSession).where(LoginSession.id == session_id, LoginSession.ended_at.is_(None))
                      .values(ended_at=now))
        raise Unauthenticated(SESSION_GONE)
    if touch:
        with db.transaction() as s:
            # Conditional, so concurrent requests of one browser write it once.
            s.execute(update(LoginSession)
                      .where(LoginSession.id == session_id, LoginSession.ended_at.is_(None),
                             LoginSession.last_seen_at <= now - TOUCH_INTERVAL)
                      .values(last_seen_at=now))
    return {**caller.to_dict(), "must_change_password": must_change}


def logout(db: Database, session_id: Any) -> None:
    if not isinstance(session_id, str) or not session_id:
        return
    now = _now()
    with db.transaction() as s:
        row = s.get(LoginSession, session_id[:64])
        if row is None or row.ended_at is not None:
            return
        row.ended_at = now
        account = s.get(Account, row.username)
        if account is not None:
            audit(s, caller_for(s, account, session_id, row.role), "session.logout", row.username)


# --- accounts ---------------------------------------------------------------------

def get_account(db: Database, caller: Caller, username: Any) -> dict[str, Any]:
    viewer = _viewer(caller)
    with db.reading() as s:
        row = s.get(Account, username) if isinstance(username, str) and username else None
        if row is None:
            # Only those who may see every account learn that one does not exist.
            raise NotFound(NO_ACCOUNT) if rules.sees_all_accounts(viewer) else Forbidden(NOT_YOURS)
        student = s.get(Student, row.username) if row.role == STUDENT else None
        place = rules.StudentPlace(student.college_code, student.class_code) if student else None
        if not rules.may_view_account(viewer, row.username, row.role, place):
            raise Forbidden(NOT_YOURS)
        return account_view(row, active_grants(s, row.username))


def count_accounts(db: Database, caller: Caller, active: bool | None = None) -> dict[str, int]:
    caller.require_role(STUDENT_AFFAIRS)
    stmt = select(func.count()).select_from(Account)
    if active is not None:
        stmt = stmt.where(Account.active.is_(bool(active)))
    with db.reading() as s:
        return {"count": s.scalar(stmt) or 0}


def _new_password_problems(password: Any, username: str) -> list[str]:
    if not isinstance(password, str):
        return ["请输入密码"]
    return policy_problems(password, username)


def create_account(db: Database, caller: Caller, username: Any, display_name: Any, role: Any,
                   scope_kind: Any, scope_ids: Any, password: Any) -> dict[str, Any]:
    """A new account with a password; people it is made for change it at first login (I3)."""
    caller.require_role(STUDENT_AFFAIRS)
    if not all(isinstance(v, str) for v in (username, display_name, role, scope_kind)):
        raise Invalid("账号、姓名、角色和数据范围必须填写")
    if not isinstance(scope_ids, Sequence) or isinstance(scope_ids, str) \
            or not all(isinstance(i, str) for i in scope_ids):
        raise Invalid("数据范围单位应为代码列表")
    ids = list(scope_ids)
    problems = rules.account_problems(username, display_name, role, scope_kind, ids)
    problems += _new_password_problems(password, username)
    if problems:
        raise Invalid("；".join(problems))
    grant = grant_rules.Grant(role, scope_kind, tuple(ids))
    if role != STUDENT:
        refusal = grant_rules.may_grant(_viewer(caller), username, grant)
        if refusal:
            raise Forbidden(refusal)
    password_hash = _off_hub(hash_password, password)
    now = _now()
    try:
        with db.transaction() as s:
            if s.get(Account, username) is not None:
                raise Conflict(f"账号 {username} 已存在")
            row = Account(
                username=username, display_name=display_name.strip(), role=role, active=True,
                must_change_password=not caller.is_system(), failed_logins=0, created_at=now, updated_at=now,
            )
            s.add(row)
            store_password(s, row, password_hash, now)
            grants = [add_grant(s, caller, username, grant, now)] if role != STUDENT else []
            s.flush()
            audit(s, caller, "account.create", username, None,
                  {**row.snapshot(), "grants": [g.view() for g in grants]})
            return account_view(row, grants)
    except IntegrityError:  # created concurrently by another request
        raise Conflict(f"账号 {username} 已存在") from None


def change_password(db: Database, caller: Caller, old_password: Any, new_password: Any) -> dict[str, Any]:
    """The caller changes their own password; their other sessions end."""
    with db.reading() as s:
        row = s.get(Account, caller.username)
        if row is None or not row.active:
            raise NotFound(NO_ACCOUNT)
        seen_hash = row.password_hash
    old = old_password if isinstance(old_password, str) else ""
    if not old or not _off_hub(verify_password, seen_hash, old):
        raise Invalid("原密码不正确")
    problems = _new_password_problems(new_password, caller.username)
    if not problems and new_password == old:
        problems.append("新密码不能与原密码相同")
    if not problems:
        with db.reading() as s:
            recent = recent_hashes(s, caller.username)
        if _off_hub(reuses_recent, new_password, recent):
            problems.append(f"新密码不能与最近{HISTORY_DEPTH}次使用过的密码相同")
    if problems:
        raise Invalid("；".join(problems))
    new_hash = _off_hub(hash_password, new_password)
    now = _now()
    with db.transaction() as s:
        row = s.get(Account, caller.username, with_for_update=True)
        if row is None or row.password_hash != seen_hash:
            raise Conflict("密码已被修改，请重新操作")
        before = row.snapshot()
        store_password(s, row, new_hash, now)
        row.must_change_password = False
        ended = _end_sessions(s, row.username, now, keep=caller.session_id)
        audit(s, caller, "account.change_password", row.username, before,
              {**row.snapshot(), "sessions_ended": ended})
        return account_view(row, active_grants(s, row.username))


def set_password(db: Database, caller: Caller, username: Any, new_password: Any) -> dict[str, Any]:
    """An administrator sets an account's password: it is unlocked and its sessions end.
    The owner must change it at next login unless the system itself set it. Who may do it
    follows the reset rules (I4)."""
    caller.require_role(STUDENT_AFFAIRS)
    if not isinstance(username, str) or not username:
        raise NotFound(NO_ACCOUNT)
    check_may_reset(db, caller, username)
    problems = _new_password_problems(new_password, username)
    if problems:
        raise Invalid("；".join(problems))
    return _replace_password(db, caller, username, _off_hub(hash_password, new_password), "account.set_password")


def check_may_reset(db: Database, caller: Caller, username: str) -> None:
    """Forbidden unless the caller may reset this account's password (I4); unknown accounts
    are NotFound only for those who administer every account."""
    viewer = _viewer(caller)
    with db.reading() as s:
        row = s.get(Account, username)
        if row is None:
            raise NotFound(NO_ACCOUNT) if rules.administers_accounts(viewer) else Forbidden(NOT_YOURS)
        student = s.get(Student, row.username) if row.role == STUDENT else None
        place = rules.StudentPlace(student.college_code, student.class_code) if student else None
        if not rules.may_reset_password(viewer, row.username, row.role, place):
            raise Forbidden("无权重置该账号的密码")


def _replace_password(db: Database, caller: Caller, username: str, new_hash: str, action: str,
                      extra: dict[str, Any] | None = None) -> dict[str, Any]:
    now = _now()
    with db.transaction() as s:
        row = s.get(Account, username, with_for_update=True)
        if row is None:
            raise NotFound(NO_ACCOUNT)
        before = row.snapshot()
        store_password(s, row, new_hash, now)
        row.must_change_password = not caller.is_system()
        row.failed_logins, row.locked_until = 0, None
        ended = _end_sessions(s, row.username, now)
        audit(s, caller, action, row.username, before,
              {**row.snapshot(), "sessions_ended": ended, **(extra or {})})
        return account_view(row, active_grants(s, row.username))


def add_grant(s: Session, caller: Caller, username: str, grant: grant_rules.Grant, now: datetime) -> AccountGrant:
    row = AccountGrant(username=username, role=grant.role, scope_kind=grant.scope_kind,
                       scope_ids=json.dumps(list(grant.scope_ids), ensure_ascii=False),
                       granted_by=caller.username, granted_at=now)
    s.add(row)
    s.flush()
    return row


# --- roster events (I5) -----------------------------------------------------------

def on_student_registered(db: Database, envelope: Envelope) -> None:
    """Keep the read copy; give a new student an account (no password until one is set)."""
    payload = StudentRegistered.model_validate(envelope.payload)
    now = _now()
    with db.transaction() as s:
        if not first_delivery(s, envelope, "identity.on_student_registered"):
            return
        # A former number (R3, the rename overtook this event): the renamed student, never a second account.
        number = current_number(s, payload.student_number)
        student = s.get(Student, number)
        if student is None:
            student = Student(student_number=number, last_change_id=None)
            s.add(student)
        if not take_snapshot(student, envelope.occurred_at):
            return  # a redelivered older snapshot: the copy and the account hold a newer one
        student.name = payload.name
        student.college_code = payload.college_code
        student.class_code = payload.class_code
        if student.last_change_id is None:  # a status change already applied is newer
            student.left = payload.left
        student.updated_at = now
        existing = s.get(Account, number)
        if existing is not None:
            # roster sends the registration again when a record is corrected: follow the name
            if existing.role == STUDENT and existing.display_name != payload.name:
                before = existing.snapshot()
                existing.display_name, existing.updated_at = payload.name, now
                audit(s, system_caller(SERVICE, envelope.correlation_id), "account.rename_person", number, before,
                      {**existing.snapshot(), "event_id": str(envelope.event_id)})
            return
        account = Account(
            username=number, display_name=payload.name, role=STUDENT, active=not student.left, password_hash=None,
            must_change_password=True, failed_logins=0, created_at=now, updated_at=now,
            # Registered as already gone (e.g. a late import of a graduate).
            deactivated_reason="注册时已离校" if student.left else None,
        )
        s.add(account)
        s.flush()
        audit(s, system_caller(SERVICE, envelope.correlation_id), "account.create", number, None,
              {**account.snapshot(), "event_id": str(envelope.event_id)})


def on_student_status_changed(db: Database, *envelopes: Envelope) -> None:
    """Several status changes (a batch) apply in one transaction, all or none."""
    with db.transaction() as s, s.no_autoflush:
        fresh = first_deliveries(s, envelopes, "identity.on_student_status_changed")
        payloads = with_current_numbers(s, [StudentStatusChanged.model_validate(e.payload)
                                            for e in fresh])  # a former number: the renamed student
        numbers = {p.student_number for p in payloads}
        students = read_copies(s, Student, numbers)
        accounts = {a.username: a for a in s.scalars(select(Account).where(Account.username.in_(numbers)))}
        sessions = _OpenSessions(s, numbers)
        for envelope, payload in zip(fresh, payloads, strict=True):
            _apply_status_change(s, envelope, payload, students.get(payload.student_number),
                                 accounts.get(payload.student_number), sessions)
        sessions.end(_now())


class _OpenSessions:
    """The open sessions of a batch's accounts, counted in one query and ended in one UPDATE.

    An ORM UPDATE per account would look through every object the batch loaded (SQLAlchemy's
    session synchronisation) for each statement: quadratic in the batch size."""

    def __init__(self, s: Session, usernames: set[str]) -> None:
        self.s = s
        self.open = dict(s.execute(
            select(LoginSession.username, func.count()).where(
                LoginSession.username.in_(usernames), LoginSession.ended_at.is_(None))
            .group_by(LoginSession.username)).tuples().all()) if usernames else {}
        self.ending: list[str] = []

    def take(self, username: str) -> int:
        """Mark an account's open sessions for ending; how many there are (0 the second time)."""
        self.ending.append(username)
        return self.open.pop(username, 0)

    def end(self, now: datetime) -> None:
        if self.ending:  # no LoginSession is loaded in the batch: nothing to synchronise
            self.s.execute(update(LoginSession)
                           .where(LoginSession.username.in_(self.ending), LoginSession.ended_at.is_(None))
                           .values(ended_at=now).execution_options(synchronize_session=False))


def _apply_status_change(s: Session, envelope: Envelope, payload: StudentStatusChanged,
                         student: Student | None, account: Account | None, sessions: _OpenSessions) -> None:
    """Leaving deactivates the account and ends its sessions; revoking that change
    reactivates it."""
    number = payload.student_number
    change = rules.StatusChange(change_id=payload.change_id, left=payload.left,
                                revokes_change_id=payload.revokes_change_id)
    now = _now()
    if student is None or account is None:
        # Its student.registered is still on its way (another queue): fail, so the
        # event is retried and, failing that, kept in the dead-letter queue.
        raise NotFound(f"还没有学号 {number} 的账号，稍后重试")
    if not rules.is_newer_change(student.last_change_id, change.change_id):
        return
    student.left = change.left
    student.last_change_id = change.change_id
    student.updated_at = now
    status = rules.AccountStatus(active=account.active, deactivated_by_event=account.deactivated_by_event,
                                 role=account.role)
    transition = rules.transition_for(status, change)
    if transition is rules.Transition.NONE:
        return
    before = account.snapshot()
    after: dict[str, Any] = {"event_id": str(envelope.event_id), "new_status": payload.new_status}
    if transition is rules.Transition.DEACTIVATE:
        account.active = False
        account.deactivated_reason = f"学籍异动（{payload.new_status}）：{payload.reason}"
        account.deactivated_by_event = change.change_id
        after["sessions_ended"] = sessions.take(number)
        action = "account.deactivate"
    else:
        account.active = True
        account.deactivated_reason = None
        account.deactivated_by_event = None
        action = "account.reactivate"
    account.updated_at = now
    audit(s, system_caller(SERVICE, envelope.correlation_id), action, number, before,
          {**account.snapshot(), **after})


def on_student_class_changed(db: Database, envelope: Envelope) -> None:
    """调班 (R9): the read copy follows the class and college, so scope checks by class see the move."""
    payload = StudentClassChanged.model_validate(envelope.payload)
    with db.transaction() as s:
        if not first_delivery(s, envelope, "identity.on_student_class_changed"):
            return
        copy_class_change(s, Student, with_current_number(s, payload), envelope.occurred_at)


def on_org_units_changed(db: Database, envelope: Envelope) -> None:
    """Roster's org tree as a read model: grants and scope checks take a class's college from it."""
    payload = OrgUnitsChanged.model_validate(envelope.payload)
    with db.transaction() as s:
        if not first_delivery(s, envelope, "identity.on_org_units_changed"):
            return
        rows = {r.code: r for r in s.scalars(select(OrgUnit).where(OrgUnit.code.in_([u.code for u in payload.units])))}
        for unit in payload.units:
            row = rows.get(unit.code)
            if row is None:
                row = rows[unit.code] = OrgUnit(code=unit.code)
                s.add(row)
            elif row.changed_at > envelope.occurred_at:  # a retried older save must not undo a newer one
                continue
            row.name, row.kind, row.parent_code = unit.name, unit.kind, unit.parent_code
            row.changed_at = envelope.occurred_at
        if payload.removed:  # units roster deleted (only empty ones): a class then falls back to its code
            for row in s.scalars(select(OrgUnit).where(OrgUnit.code.in_(payload.removed))):
                if row.changed_at <= envelope.occurred_at:
                    s.delete(row)
