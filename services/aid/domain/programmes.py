"""Programmes (资助项目) as data, with the eligibility rules applied at every step (A1, A3).

Defaults follow the current national standards; a deployment may change amounts, tiers
and limits in the programmes table without code changes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from services.aid.domain.needy import Levels

SCHOLARSHIP = "scholarship"
GRANT = "grant"
LOAN = "loan"
WORK_STUDY = "work_study"
WAIVER = "waiver"
EMERGENCY = "emergency"
GREEN_CHANNEL = "green_channel"


@dataclass(frozen=True)
class Programme:
    code: str
    name: str
    kind: str
    amount: int | None = None  # fixed amount (元); None when it varies
    tiers: dict[str, int] = field(default_factory=dict)  # need level → amount (助学金)
    max_amount: int | None = None  # a ceiling when the amount is requested (loans, subsidies)
    max_amount_postgraduate: int | None = None
    requires_need: bool = False
    min_need_level: str | None = None  # e.g. 一般困难: any needy level qualifies
    min_year: int = 1  # year of study
    max_rank_percent: int | None = None  # results: class rank in the top N %
    payer: str = "中央与地方财政"
    instalments: int = 1  # paid in this many instalments
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Programme:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["tiers"] = {str(k): int(v) for k, v in (known.get("tiers") or {}).items()}
        return cls(**known)


DEFAULT_PROGRAMMES: tuple[Programme, ...] = (
    Programme("GJJXJ", "国家奖学金", SCHOLARSHIP, amount=10000, min_year=2, max_rank_percent=10),
    Programme("GJLZJXJ", "国家励志奖学金", SCHOLARSHIP, amount=6000, min_year=2, max_rank_percent=30,
              requires_need=True, min_need_level="一般困难"),
    Programme("GJZXJ", "国家助学金", GRANT, tiers={"特别困难": 4400, "困难": 3700, "一般困难": 3000},
              requires_need=True, min_need_level="一般困难", instalments=10),
    Programme("ZXDK", "国家助学贷款", LOAN, max_amount=20000, max_amount_postgraduate=25000,
              requires_need=True, min_need_level="一般困难", payer="经办银行"),
    Programme("QGZX", "勤工助学", WORK_STUDY, payer="学校"),
    Programme("XFJM", "学费减免", WAIVER, requires_need=True, min_need_level="困难", payer="学校"),
    Programme("LSKNBZ", "临时困难补助", EMERGENCY, max_amount=3000, payer="学校"),
    Programme("LSTD", "绿色通道", GREEN_CHANNEL, payer="学校"),
)


@dataclass(frozen=True)
class Applicant:
    """What eligibility looks at, all from aid's own registers."""

    enrolled: bool
    year_of_study: int | None
    need_level: str | None  # this academic year's identification, None if none
    rank_percent: int | None = None  # class rank as a percentage (1 = top), None if unknown
    postgraduate: bool = False
    stop_instalments: bool = False


def amount_for(programme: Programme, need_level: str | None, requested: int | None) -> int:
    """The amount awarded: fixed, the tier of the need level, or what was requested (checked separately)."""
    if programme.amount is not None:
        return programme.amount
    if programme.tiers:
        return programme.tiers.get(need_level or "", 0)
    return int(requested or 0)


def refusals(programme: Programme, applicant: Applicant, levels: Levels, requested: int | None = None) -> list[str]:
    """Why `applicant` may not receive `programme` (Chinese); empty when eligible."""
    found = []
    if not programme.active:
        found.append(f"{programme.name}本学年未开放")
    if not applicant.enrolled:
        found.append("学生不在在校生库中（已离校或未报到）")
    if applicant.stop_instalments:
        found.append("学生已离校，已停止发放")
    if programme.min_year > 1:
        if applicant.year_of_study is None:
            found.append("无法确定学生年级")
        elif applicant.year_of_study < programme.min_year:
            found.append(f"{programme.name}限二年级及以上学生申请" if programme.min_year == 2
                         else f"{programme.name}限{programme.min_year}年级及以上学生申请")
    if programme.requires_need:
        minimum = programme.min_need_level or levels.names[-2]
        if not levels.is_needy(applicant.need_level):
            found.append(f"{programme.name}须为本学年认定的家庭经济困难学生")
        elif not levels.at_least(applicant.need_level, minimum):
            found.append(f"{programme.name}须认定为“{minimum}”及以上")
    if programme.max_rank_percent is not None:
        if applicant.rank_percent is None:
            found.append("缺少学业成绩排名")
        elif applicant.rank_percent > programme.max_rank_percent:
            found.append(f"学业成绩排名须在前 {programme.max_rank_percent}%")
    ceiling = programme.max_amount_postgraduate if applicant.postgraduate and programme.max_amount_postgraduate \
        else programme.max_amount
    if programme.amount is None and not programme.tiers:
        if requested is not None and requested <= 0:
            found.append("申请金额必须大于 0")
        elif ceiling is not None and requested is not None and requested > ceiling:
            found.append(f"{programme.name}每学年不超过 {ceiling} 元")
    if programme.tiers and programme.requires_need and levels.is_needy(applicant.need_level) \
            and applicant.need_level not in programme.tiers:
        found.append(f"{programme.name}没有“{applicant.need_level}”档次")
    return found


# 勤工助学 (国家规定): at most 8 hours a week and 40 a month; temporary posts at least 12 元 an hour.
WORK_STUDY_WEEK_HOURS = 8
WORK_STUDY_MONTH_HOURS = 40
WORK_STUDY_MIN_HOURLY = 12


def work_study_refusals(hours_week: float, hours_month: float, hourly_rate: float, temporary: bool) -> list[str]:
    found = []
    if hours_week > WORK_STUDY_WEEK_HOURS:
        found.append(f"勤工助学每周不超过 {WORK_STUDY_WEEK_HOURS} 小时")
    if hours_month > WORK_STUDY_MONTH_HOURS:
        found.append(f"勤工助学每月不超过 {WORK_STUDY_MONTH_HOURS} 小时")
    if temporary and hourly_rate < WORK_STUDY_MIN_HOURLY:
        found.append(f"临时岗位每小时不低于 {WORK_STUDY_MIN_HOURLY} 元")
    return found


# ---- rules of a programme as edited (资助项目维护) ------------------------------------------------

KIND_LABELS = {SCHOLARSHIP: "奖学金", GRANT: "助学金", LOAN: "助学贷款", WORK_STUDY: "勤工助学", WAIVER: "学费减免",
               EMERGENCY: "临时困难补助", GREEN_CHANNEL: "绿色通道"}
CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,15}$")


def programme_problems(p: Programme, levels: Levels) -> list[str]:
    """Why an edited programme may not be saved (Chinese, one message per field); empty when it may."""
    found = []
    if not CODE.match(p.code or ""):
        found.append("项目代码须为 2–16 位大写字母、数字或下划线，以字母开头")
    if not (p.name or "").strip() or len(p.name) > 64:
        found.append("项目名称不能为空，且不超过 64 个字")
    if p.kind not in KIND_LABELS:
        found.append(f"项目类型“{p.kind}”无效，应为：{'、'.join(KIND_LABELS.values())}")
    ceilings = (("固定金额", p.amount), ("金额上限", p.max_amount), ("研究生金额上限", p.max_amount_postgraduate))
    for label, value in ceilings:
        if value is not None and value <= 0:
            found.append(f"{label}须大于 0 元")
    needy_levels = [n for n in levels.names if levels.is_needy(n)]
    unknown = [k for k in p.tiers if k not in needy_levels]
    if unknown:
        found.append(f"档次“{'、'.join(unknown)}”不是困难认定级别，应为：{'、'.join(needy_levels)}")
    if any(v <= 0 for v in p.tiers.values()):
        found.append("各档次金额须大于 0 元")
    if p.amount is not None and p.tiers:
        found.append("固定金额与分档金额只能填一种")
    if p.tiers and not p.requires_need:
        found.append("按困难级别分档的项目须要求家庭经济困难")
    if p.min_need_level is not None and p.min_need_level not in needy_levels:
        found.append(f"最低困难级别应为：{'、'.join(needy_levels)}")
    if not 1 <= p.min_year <= 8:
        found.append("最低年级须在 1–8 之间")
    if p.max_rank_percent is not None and not 1 <= p.max_rank_percent <= 100:
        found.append("成绩排名要求须在前 1%–100% 之间")
    if not 1 <= p.instalments <= 12:
        found.append("发放期数须在 1–12 之间")
    if not (p.payer or "").strip():
        found.append("请填写资金来源（发放单位）")
    return found
