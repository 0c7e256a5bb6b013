"""Transfer administration (T2, T4, T5, interchange keys): peer institutions and the keys shared with
them, the working-day calendar (overrides entered or imported from the State Council's notice) and the
settings the workflow reads. Every change is audited; a key's secret never is, and is shown once.

Who: peers and keys — the IT centre and the student affairs office (others who handle transfers read
them, without keys' secrets); calendar and settings — the student affairs office; an authority may set
its own deadline in `deadline_days_by_authority` (T4: some provinces use 10 working days).
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, AUTHORITY, IT_CENTRE, STUDENT_AFFAIRS, SYSTEM, Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.sheets import CellError, Column, annotate, column_letter, read_rows, template
from services.common.workdays import WorkdayCalendar
from services.transfer.adapters.orm import CalendarDay, Peer, PeerKey, TransferSetting
from services.transfer.domain import admin_rules as rules
from services.transfer.outgoing import own_code

PEER_ADMINS = (IT_CENTRE, STUDENT_AFFAIRS)
PEER_READERS = (*PEER_ADMINS, ACADEMIC_AFFAIRS, AUTHORITY)
CALENDAR_ADMINS = (STUDENT_AFFAIRS,)
CALENDAR_READERS = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, AUTHORITY, IT_CENTRE)
MAX_LISTED_ERRORS = 500
CALENDAR_COLUMNS = (
    Column("day", "日期", required=True, note="格式 yyyy-mm-dd，如 2027-10-01", width=14),
    Column("is_workday", "是否工作日", required=True, choices=("是", "否"),
           note="“否”：放假（法定节假日）；“是”：调休上班的周末", width=12),
    Column("note", "说明", note="如：国庆节、国庆节调休上班（不超过100字）", width=30),
)


def _invalid(exc: rules.AdminError) -> Invalid:
    return Invalid(exc.message)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# ---- peers and keys ---------------------------------------------------------------------------------


def _key_view(key: PeerKey) -> dict[str, Any]:
    return {"key_id": key.key_id, "state": key.state, "state_label": "启用" if key.state == "active" else "已停用",
            "created_at": _iso(key.created_at), "created_by": key.created_by, "retired_at": _iso(key.retired_at)}


def _peer_view(peer: Peer, keys: list[PeerKey]) -> dict[str, Any]:
    return {"code": peer.code, "name": peer.name, "province": peer.province, "authority_code": peer.authority_code,
            "active": peer.active, "created_at": _iso(peer.created_at),
            "keys": [_key_view(k) for k in keys], "active_keys": sum(k.state == "active" for k in keys)}


def _keys_of(s: Session, codes: list[str]) -> dict[str, list[PeerKey]]:
    found: dict[str, list[PeerKey]] = {code: [] for code in codes}
    if codes:
        for key in s.scalars(select(PeerKey).where(PeerKey.peer_code.in_(codes))
                             .order_by(PeerKey.created_at, PeerKey.id)):
            found[key.peer_code].append(key)
    return found


def list_peers(db: Database, caller: Caller) -> list[dict[str, Any]]:
    """Every peer with its keys (ids and states; secrets never leave the service after creation)."""
    caller.require_role(*PEER_READERS)
    with db.reading() as s:
        peers = s.scalars(select(Peer).order_by(Peer.code)).all()
        keys = _keys_of(s, [p.code for p in peers])
        return [_peer_view(p, keys[p.code]) for p in peers]


def save_peer(db: Database, caller: Caller, code: str, name: str, province: str, authority_code: str = "",
              active: bool = True) -> dict[str, Any]:
    """Add a peer or change one (name, province, authority, active). An inactive peer's messages are
    not accepted and none are signed for it."""
    caller.require_role(*PEER_ADMINS)
    try:
        fields = rules.check_peer(code, name, province, authority_code, own=own_code())
    except rules.AdminError as exc:
        raise _invalid(exc) from None
    with db.transaction() as s:
        peer = s.get(Peer, fields.code)
        before = None if peer is None else {"name": peer.name, "province": peer.province,
                                            "authority_code": peer.authority_code, "active": peer.active}
        if peer is None:
            peer = Peer(code=fields.code, created_at=_now())
            s.add(peer)
        peer.name, peer.province, peer.authority_code = fields.name, fields.province, fields.authority_code
        peer.active = bool(active)
        s.flush()
        audit(s, caller, "peer.save", peer.code, before,
              {"name": peer.name, "province": peer.province, "authority_code": peer.authority_code,
               "active": peer.active})
        return _peer_view(peer, _keys_of(s, [peer.code])[peer.code])


def _peer(s: Session, code: str) -> Peer:
    peer = s.get(Peer, str(code or "").strip())
    if peer is None:
        raise NotFound(f"对端单位 {code} 不存在")
    return peer


def add_peer_key(db: Database, caller: Caller, peer_code: str, key_id: str, secret: str = "") -> dict[str, Any]:
    """A key shared with the peer. Empty `secret`: 32 random bytes are generated and returned, base64,
    this once, to hand to the peer over a safe channel; a secret the peer generated is given base64.
    The newest active key signs; every active key verifies, so a rotation is: add, let the peer add
    it, then retire the old one."""
    caller.require_role(*PEER_ADMINS)
    try:
        key_id = rules.check_key_id(key_id)
        generated = not str(secret or "").strip()
        value = secrets.token_bytes(rules.SECRET_BYTES) if generated else rules.parse_secret(secret)
    except rules.AdminError as exc:
        raise _invalid(exc) from None
    with db.transaction() as s:
        peer = _peer(s, peer_code)
        clash = s.scalar(select(PeerKey.id).where(PeerKey.peer_code == peer.code, PeerKey.key_id == key_id))
        if clash is not None:
            raise Conflict(f"对端单位 {peer.code} 已有编号为 {key_id} 的密钥（停用的编号也不能再用）")
        key = PeerKey(peer_code=peer.code, key_id=key_id, secret=value, state="active", created_at=_now(),
                      created_by=caller.username)
        s.add(key)
        s.flush()
        audit(s, caller, "peer.key_add", peer.code, None,
              {"key_id": key_id, "generated": generated, "bytes": len(value)})  # never the secret itself
        view = _key_view(key)
    return {**view, "peer_code": peer.code, "generated": generated,
            "secret": base64.b64encode(value).decode("ascii") if generated else None,
            "notice": "密钥只显示这一次，请通过安全渠道交给对端单位" if generated else None}


def retire_peer_key(db: Database, caller: Caller, peer_code: str, key_id: str) -> dict[str, Any]:
    """Retire a key: it signs and verifies nothing from now on. Retiring the last active key of an active
    peer is allowed (a compromised key must go at once) but said in `warning`."""
    caller.require_role(*PEER_ADMINS)
    with db.transaction() as s:
        peer = _peer(s, peer_code)
        key = s.scalars(select(PeerKey).where(PeerKey.peer_code == peer.code,
                                              PeerKey.key_id == str(key_id or "").strip())).first()
        if key is None:
            raise NotFound(f"对端单位 {peer.code} 没有编号为 {key_id} 的密钥")
        changed = key.state != "retired"
        if changed:
            key.state, key.retired_at = "retired", _now()
            audit(s, caller, "peer.key_retire", peer.code, {"key_id": key.key_id, "state": "active"},
                  {"key_id": key.key_id, "state": "retired"})
        left = s.scalar(select(PeerKey.id).where(PeerKey.peer_code == peer.code, PeerKey.state == "active")
                        .limit(1))
        warning = None
        if peer.active and left is None:
            warning = (f"对端单位 {peer.code} 已没有可用的密钥：发往该单位的消息无法签名，"
                       "该单位发来的消息将被拒收。请尽快添加新密钥")
        return {**_key_view(key), "peer_code": peer.code, "changed": changed, "warning": warning}


# ---- the working-day calendar -------------------------------------------------------------------------


def calendar_of(s: Session) -> WorkdayCalendar:
    """The calendar every deadline is counted on: chinese-calendar plus the saved overrides."""
    return WorkdayCalendar({d.day: d.is_workday for d in s.scalars(select(CalendarDay))})


def _day_view(row: CalendarDay) -> dict[str, Any]:
    return {"day": row.day.isoformat(), "is_workday": row.is_workday, "note": row.note,
            "updated_by": row.updated_by, "updated_at": _iso(row.updated_at)}


def calendar_days(db: Database, caller: Caller, year: int) -> dict[str, Any]:
    """One year: whether its holidays are known (chinese-calendar or an override), the overrides, and
    how many working days it has."""
    caller.require_role(*CALENDAR_READERS)
    try:
        year = rules.check_year(year)
    except rules.AdminError as exc:
        raise _invalid(exc) from None
    with db.reading() as s:
        calendar = calendar_of(s)
        rows = s.scalars(select(CalendarDay).where(CalendarDay.day >= date(year, 1, 1),
                                                   CalendarDay.day <= date(year, 12, 31))
                         .order_by(CalendarDay.day)).all()
        first = date(year, 1, 1)
        days = (date(year + 1, 1, 1) - first).days
        workdays = sum(calendar.is_workday(first + timedelta(days=n)) for n in range(days))
        return {"year": year, "known": calendar.known(year), "overrides": [_day_view(r) for r in rows],
                "workdays": workdays}


def _upsert_day(s: Session, caller: Caller, day: date, is_workday: bool, note: str | None,
                now: datetime) -> str:
    """'created' | 'updated' | 'unchanged'."""
    row = s.get(CalendarDay, day)
    if row is not None and row.is_workday == is_workday and row.note == note:
        return "unchanged"
    outcome = "created" if row is None else "updated"
    if row is None:
        row = CalendarDay(day=day)
        s.add(row)
    row.is_workday, row.note, row.updated_by, row.updated_at = is_workday, note, caller.username, now
    return outcome


def save_calendar_day(db: Database, caller: Caller, day: str, is_workday: Any, note: str = "") -> dict[str, Any]:
    caller.require_role(*CALENDAR_ADMINS)
    try:
        parsed, workday, text = rules.parse_day(day), rules.parse_workday(is_workday), rules.check_note(note)
    except rules.AdminError as exc:
        raise _invalid(exc) from None
    with db.transaction() as s:
        row = s.get(CalendarDay, parsed)
        before = None if row is None else {"is_workday": row.is_workday, "note": row.note}
        outcome = _upsert_day(s, caller, parsed, workday, text, _now())
        if outcome != "unchanged":
            audit(s, caller, "calendar.save", parsed.isoformat(), before, {"is_workday": workday, "note": text})
        row = s.get(CalendarDay, parsed)
        assert row is not None
        return {**_day_view(row), "outcome": outcome}


def delete_calendar_day(db: Database, caller: Caller, day: str) -> dict[str, Any]:
    """Remove an override: the day follows chinese-calendar (or Monday–Friday) again."""
    caller.require_role(*CALENDAR_ADMINS)
    try:
        parsed = rules.parse_day(day)
    except rules.AdminError as exc:
        raise _invalid(exc) from None
    with db.transaction() as s:
        row = s.get(CalendarDay, parsed)
        if row is None:
            raise NotFound(f"{parsed.isoformat()} 没有设置过")
        audit(s, caller, "calendar.delete", parsed.isoformat(), {"is_workday": row.is_workday, "note": row.note},
              None)
        s.delete(row)
        return {"day": parsed.isoformat(), "deleted": True}


def calendar_template(db: Database, caller: Caller) -> dict[str, str]:
    caller.require_role(*CALENDAR_ADMINS)
    content = template(CALENDAR_COLUMNS, "工作日历", example=None)
    return {"filename": "工作日历导入模板.xlsx", "content": base64.b64encode(content).decode("ascii")}


def import_calendar(db: Database, caller: Caller, content: str) -> dict[str, Any]:
    """The yearly notice as a sheet (日期, 是否工作日, 说明), checked cell by cell; any error saves
    nothing and returns the workbook with the bad cells marked."""
    caller.require_role(*CALENDAR_ADMINS)
    try:
        data = base64.b64decode(content, validate=True)
    except ValueError:
        raise Invalid("上传内容不是有效的文件") from None
    letters = {c.key: column_letter(CALENDAR_COLUMNS, c.key) for c in CALENDAR_COLUMNS}
    headers = {c.key: c.header for c in CALENDAR_COLUMNS}
    errors: list[CellError] = []
    entries: list[tuple[date, bool, str | None]] = []
    first_row: dict[date, int] = {}
    rows = list(read_rows(data, CALENDAR_COLUMNS))
    if not rows:
        raise Invalid("文件中没有数据行")
    for excel_row, raw in rows:
        values: dict[str, Any] = {}
        for key, parse in (("day", rules.parse_day), ("is_workday", rules.parse_workday),
                           ("note", rules.check_note)):
            if key != "note" and not raw[key]:
                errors.append(CellError(excel_row, letters[key], headers[key], "", f"{headers[key]}不能为空"))
                continue
            try:
                values[key] = parse(raw[key])
            except rules.AdminError as exc:
                errors.append(CellError(excel_row, letters[key], headers[key], raw[key], exc.message))
        if len(values) < 3:
            continue
        if values["day"] in first_row:
            errors.append(CellError(excel_row, letters["day"], headers["day"], raw["day"],
                                    f"与第 {first_row[values['day']]} 行重复"))
            continue
        first_row[values["day"]] = excel_row
        entries.append((values["day"], values["is_workday"], values["note"]))
    if errors:
        errors.sort(key=lambda e: (e.row, e.column))
        return {"ok": False, "created": 0, "updated": 0, "unchanged": 0, "error_count": len(errors),
                "errors": [{"row": e.row, "column": e.column, "header": e.header, "value": str(e.value or ""),
                            "message": e.message} for e in errors[:MAX_LISTED_ERRORS]],
                "annotated": base64.b64encode(annotate(data, CALENDAR_COLUMNS, errors)).decode("ascii")}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    now = _now()
    with db.transaction() as s:
        for day, workday, note in entries:
            counts[_upsert_day(s, caller, day, workday, note, now)] += 1
        if counts["created"] or counts["updated"]:
            years = sorted({d.year for d, _, _ in entries})
            audit(s, caller, "calendar.import", "calendar_days", None, {**counts, "years": years})
    return {"ok": True, **counts, "error_count": 0, "errors": [], "annotated": None}


# ---- settings ---------------------------------------------------------------------------------------


def setting_values(s: Session) -> dict[str, Any]:
    """Every setting, stored values over the defaults."""
    values = {key: setting.default for key, setting in rules.SETTINGS.items()}
    for row in s.scalars(select(TransferSetting)):
        if row.key in values:
            values[row.key] = json.loads(row.value)
    return values


def transfer_settings(db: Database, caller: Caller) -> list[dict[str, Any]]:
    caller.require_role(*CALENDAR_READERS)
    with db.reading() as s:
        values = setting_values(s)
    editable = set(rules.SETTINGS) if caller.role in (STUDENT_AFFAIRS, SYSTEM) else \
        {"deadline_days_by_authority"} if caller.role == AUTHORITY else set()
    return [{"key": key, "label": setting.label, "kind": setting.kind, "value": values[key],
             "default": setting.default, "editable": key in editable}
            for key, setting in rules.SETTINGS.items()]


def save_transfer_setting(db: Database, caller: Caller, key: str, value: Any) -> dict[str, Any]:
    """Student affairs sets any; an authority only its own entries of `deadline_days_by_authority`
    (the area codes of its scope)."""
    caller.require_role(STUDENT_AFFAIRS, AUTHORITY)
    if caller.role == AUTHORITY and key != "deadline_days_by_authority":
        raise Forbidden("学籍主管部门只能设置本部门的审核期限")
    try:
        stored = rules.parse_setting(key, value)
    except rules.AdminError as exc:
        raise _invalid(exc) from None
    with db.transaction() as s:
        before = setting_values(s)[key]
        if caller.role == AUTHORITY:
            foreign = rules.authority_changes(before, stored) - set(caller.scope.ids)
            if foreign:
                raise Forbidden(f"只能设置本部门的审核期限，不能修改 {'、'.join(sorted(foreign))}")
        row = s.get(TransferSetting, key) or TransferSetting(key=key)
        row.value = json.dumps(stored, ensure_ascii=False)
        row.updated_by, row.updated_at = caller.username, _now()
        s.add(row)
        audit(s, caller, "transfer_setting.save", key, {"value": before}, {"value": stored})
    return {"key": key, "value": stored}
