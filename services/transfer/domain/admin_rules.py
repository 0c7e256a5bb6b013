"""Transfer administration as plain rules: peer institutions and their keys, the working-day calendar's
overrides, and the settings the workflow reads (T4 deadlines, T5 term windows).

Nothing here touches a database; the use cases in services/transfer/admin.py call these and turn an
`AdminError` into `Invalid`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.transfer.domain.workflow import DEFAULT_DEADLINE_DAYS

# GB/T 2260 provinces (first two digits of a division code), for T2 (across provinces).
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82".split())
_INSTITUTION = re.compile(r"^\d{10}$")
_AUTHORITY = re.compile(r"^\d{6}$")  # the division code of an education authority's area, e.g. 420100
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
SECRET_BYTES = 32  # generated keys: 256 bits, HMAC-SHA256's block-size sweet spot
MIN_SECRET_BYTES = 16  # a key given by the peer: at least 128 bits
MAX_SECRET_BYTES = 128
MAX_NAME = 100
MAX_NOTE = 100
MAX_DEADLINE_DAYS = 60
MAX_WINDOW_DAYS = 92  # a window is a month or so of a term, never longer than a quarter


class AdminError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PeerFields:
    code: str
    name: str
    province: str
    authority_code: str | None


def check_peer(code: Any, name: Any, province: Any, authority_code: Any, *, own: str) -> PeerFields:
    """A peer institution as entered: the 10-digit 学校标识码, a name, the province (defaults to the one
    the code carries: 4142010001 → 42) and optionally its supervising authority's area code."""
    code = str(code or "").strip()
    if not _INSTITUTION.match(code):
        raise AdminError("学校标识码应为10位数字")
    if code == own:
        raise AdminError("不能把本校添加为对端单位")
    name = str(name or "").strip()
    if not name:
        raise AdminError("请填写单位名称")
    if len(name) > MAX_NAME:
        raise AdminError(f"单位名称不能超过{MAX_NAME}个字")
    province = str(province or "").strip() or code[2:4]
    if province not in PROVINCES:
        raise AdminError(f"省份代码“{province}”无效：应为 GB/T 2260 的两位省级代码，如 42")
    authority = str(authority_code or "").strip() or None
    if authority is not None and not _AUTHORITY.match(authority):
        raise AdminError("主管部门代码应为6位行政区划代码，如 420100")
    return PeerFields(code, name, province, authority)


def check_key_id(key_id: Any) -> str:
    text = str(key_id or "").strip()
    if not _KEY_ID.match(text):
        raise AdminError("密钥编号应为1到64位字母、数字或 . _ : -，以字母或数字开头")
    return text


def parse_secret(text: Any) -> bytes:
    """A key the peer generated and gave us, base64."""
    try:
        secret = base64.b64decode(str(text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AdminError("密钥应为 Base64 编码") from None
    if not MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES:
        raise AdminError(f"密钥长度应为{MIN_SECRET_BYTES}到{MAX_SECRET_BYTES}字节（建议{SECRET_BYTES}字节）")
    return secret


# ---- calendar -----------------------------------------------------------------------------------------

_YES = {"是", "y", "yes", "true", "1", "工作日"}
_NO = {"否", "n", "no", "false", "0", "休息日", "节假日"}


def parse_day(value: Any, label: str = "日期") -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise AdminError(f"{label}应为 yyyy-mm-dd 格式的日期") from None


def parse_workday(value: Any) -> bool:
    """是/否 as the sheet has it (a form's true/false too)."""
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise AdminError("是否工作日应填“是”或“否”")


def check_note(value: Any) -> str | None:
    text = str(value or "").strip()
    if len(text) > MAX_NOTE:
        raise AdminError(f"说明不能超过{MAX_NOTE}个字")
    return text or None


def check_year(value: Any) -> int:
    try:
        year = int(value)
    except (TypeError, ValueError):
        raise AdminError("年份无效") from None
    if not 2000 <= year <= 2100:
        raise AdminError("年份应在2000到2100之间")
    return year


# ---- settings -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    default: Any
    kind: str  # days | days_by_authority | windows | authority


SETTINGS: dict[str, Setting] = {s.key: s for s in (
    Setting("deadline_days", "每个审核环节的期限（工作日）", DEFAULT_DEADLINE_DAYS, "days"),
    Setting("deadline_days_by_authority", "各主管部门的审核期限（工作日，按主管部门代码）", {}, "days_by_authority"),
    Setting("term_windows", "正常转学时段（每学期第一个月和最后一个月）", [], "windows"),
    Setting("authority_code", "本校主管部门代码（留空按学校标识码推算）", "", "authority"),
)}


def parse_setting(key: str, value: Any) -> Any:
    """The stored (JSON) form of a setting's value; raises AdminError with a message for people."""
    setting = SETTINGS.get(key)
    if setting is None:
        raise AdminError(f"未知的设置 {key}")
    if setting.kind == "days":
        return _days(value, setting.label)
    if setting.kind == "days_by_authority":
        if not isinstance(value, Mapping):
            raise AdminError(f"{setting.label}：应为“主管部门代码 → 工作日数”")
        clean = {}
        for code, days in value.items():
            code = str(code).strip()
            if not _AUTHORITY.match(code):
                raise AdminError(f"{setting.label}：主管部门代码“{code}”应为6位行政区划代码")
            clean[code] = _days(days, f"{setting.label}（{code}）")
        return dict(sorted(clean.items()))
    if setting.kind == "windows":
        return _windows(value, setting.label)
    text = str(value or "").strip()
    if text and not _AUTHORITY.match(text):
        raise AdminError(f"{setting.label}：应为6位行政区划代码，如 420100")
    return text


def _days(value: Any, label: str) -> int:
    try:
        days = int(value)
        if isinstance(value, float) and value != days:
            raise ValueError
    except (TypeError, ValueError):
        raise AdminError(f"{label}：应为整数") from None
    if not 1 <= days <= MAX_DEADLINE_DAYS:
        raise AdminError(f"{label}：应在1到{MAX_DEADLINE_DAYS}个工作日之间")
    return days


def _windows(value: Any, label: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise AdminError(f"{label}：应为时段列表")
    spans = []
    for n, item in enumerate(value, start=1):
        if not isinstance(item, Mapping):
            raise AdminError(f"{label}：第{n}个时段格式不正确")
        start = parse_day(item.get("start"), f"第{n}个时段的开始日期")
        end = parse_day(item.get("end"), f"第{n}个时段的结束日期")
        if end < start:
            raise AdminError(f"{label}：第{n}个时段的结束日期早于开始日期")
        if (end - start).days + 1 > MAX_WINDOW_DAYS:
            raise AdminError(f"{label}：第{n}个时段超过{MAX_WINDOW_DAYS}天（应为学期首月或末月）")
        spans.append((start, end))
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        if start <= end:
            raise AdminError(f"{label}：时段 {start.isoformat()} 与前一时段重叠")
    return [{"start": s.isoformat(), "end": e.isoformat()} for s, e in spans]


def authority_changes(before: Mapping[str, int], after: Mapping[str, int]) -> set[str]:
    """Authority codes whose deadline the edit adds, changes or removes."""
    return {code for code in set(before) | set(after) if before.get(code) != after.get(code)}
