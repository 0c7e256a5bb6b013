"""Roster's configured dates and thresholds (R4, R8, R16, R17): defaults here, edits by the
student affairs office in `roster_settings` (audited)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.errors import Invalid
from services.roster.adapters.orm import RosterSetting
from services.roster.domain.transitions import KINDS


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    default: Any
    kind: str  # date | month_day | int | kinds | bool


SETTINGS: dict[str, Setting] = {s.key: s for s in (
    Setting("welcome_end", "迎新截止日期（此后未报到的新生标记为未报到）", None, "date"),
    Setting("suspect_days", "连续缺勤且联系不上多少个教学日标记为疑似辍学", 3, "int"),
    Setting("dropout_days", "连续缺勤且联系不上多少个教学日标记为辍学", 7, "int"),
    Setting("promotion_day", "升级日（每年，月-日）", "08-01", "month_day"),
    Setting("graduation_deadline", "毕业截止日（每年，月-日）", "07-31", "month_day"),
    Setting("authority_approval_kinds", "须经学籍主管部门审批的异动类型（中小学）", [], "kinds"),
)}


def parse_value(setting: Setting, value: Any) -> Any:
    """The stored form of `value`; raises Invalid with a message for people."""
    try:
        if setting.kind == "date":
            return None if value in (None, "") else date.fromisoformat(str(value)).isoformat()
        if setting.kind == "month_day":
            text = str(value).strip()
            date.fromisoformat(f"2024-{text}")  # a leap year accepts every real day
            return text
        if setting.kind == "int":
            number = int(value)
            if not 1 <= number <= 366:
                raise ValueError
            return number
        if setting.kind == "bool":
            return bool(value)
        if setting.kind == "kinds":
            codes = [value] if isinstance(value, str) else list(value or [])
            unknown = [c for c in codes if c not in KINDS]
            if unknown:
                raise Invalid(f"{setting.label}：未知的异动类型 {'、'.join(unknown)}")
            return sorted(set(codes))
    except (TypeError, ValueError):
        raise Invalid(f"{setting.label}：值“{value}”无效") from None
    raise Invalid(f"未知的设置 {setting.key}")


def current(s: Session) -> dict[str, Any]:
    """Every setting, stored values over defaults."""
    values = {key: setting.default for key, setting in SETTINGS.items()}
    for row in s.scalars(select(RosterSetting)):
        if row.key in values:
            values[row.key] = json.loads(row.value)
    return values


def read_settings(db: Database, caller: Caller) -> list[dict[str, Any]]:
    caller.require_role(STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
    with db.reading() as s:
        values = current(s)
    kinds = [{"code": k.code, "label": k.label} for k in KINDS.values()]
    return [{"key": k, "label": v.label, "kind": v.kind, "value": values[k], "default": v.default,
             **({"choices": kinds} if v.kind == "kinds" else {})}
            for k, v in SETTINGS.items()]


def save_setting(db: Database, caller: Caller, key: str, value: Any) -> dict[str, Any]:
    caller.require_role(STUDENT_AFFAIRS)
    setting = SETTINGS.get(key)
    if setting is None:
        raise Invalid(f"未知的设置 {key}")
    stored = parse_value(setting, value)
    with db.transaction() as s:
        before = current(s)[key]
        row = s.get(RosterSetting, key) or RosterSetting(key=key)
        row.value = json.dumps(stored, ensure_ascii=False)
        row.updated_at, row.updated_by = datetime.now(UTC), caller.username
        s.add(row)
        audit(s, caller, "setting.save", key, {"value": before}, {"value": stored}, chain=True)
    return {"key": key, "value": stored}
