"""数据看板 (issue 9): charts per area the caller may see, each bar leading to the list behind it.

One `call_many` asks every service at once, bounded by the aggregate timeout (`home.timeout`);
an area whose service does not answer is `null` and listed in `missing`, the rest still show.
`/api/v1/dashboard` answers the same data as JSON: `{"areas": {name: {...} | null}, "missing": [...]}`
(areas the role may not see are absent, not null). Every chart row carries `link`: the list page,
filtered, that shows exactly the rows the bar counts (the page's own check and the service's scope
still apply there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, jsonify, request, url_for
from werkzeug.wrappers import Response

from gateway import auth, menu
from gateway.aid_web import current_academic_year
from gateway.home import timeout
from gateway.presenters import PAGE_SIZES, Pagination, page_args
from gateway.rpc import Outcome, ServiceUnavailable, service_label
from gateway.security import check_api_request, check_form
from gateway.web import _page, _render
from services.common import caller as roles
from services.common.caller import Caller
from services.common.errors import Forbidden, Invalid, Unauthenticated

log = logging.getLogger(__name__)

bp = Blueprint("dashboard_web", __name__)
api_bp = Blueprint("dashboard_api", __name__, url_prefix="/api/v1")

ROSTER_CHARTS = frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS,
                           roles.AUTHORITY})
ENROLMENT_DIMENSIONS = {"college": "college_code", "grade": "grade", "gender": "gender", "ethnicity": "ethnicity"}
MONTHS = 12


@dataclass(frozen=True)
class Area:
    label: str
    service: str
    roles: frozenset[str]


AREAS: dict[str, Area] = {
    "enrolment": Area("在校生分布", "roster", ROSTER_CHARTS),
    "status_changes": Area("学籍异动", "roster", ROSTER_CHARTS),
    "occupancy": Area("住宿", "housing", menu.HOUSING_READERS),
    "aid": Area("资助", "aid", menu.AID_CENTRE),
    "transfers": Area("转学", "transfer", menu.TRANSFER_DECIDERS),
}


@bp.before_request
def _csrf() -> None:
    check_form()


@api_bp.before_request
def _api_csrf() -> None:
    check_api_request()


def areas_for(role: str) -> list[str]:
    return [name for name, area in AREAS.items() if role in area.roles]


def _calls(names: list[str], year: str) -> dict[str, tuple[Any, ...]]:
    calls: dict[str, tuple[Any, ...]] = {}
    if "enrolment" in names:
        for by in ENROLMENT_DIMENSIONS:
            calls[f"enrolment:{by}"] = ("roster", "statistics", by)
    if "status_changes" in names:
        calls["status_changes"] = ("roster", "status_change_counts", MONTHS)
    if "occupancy" in names:
        calls["occupancy"] = ("housing", "occupancy_report")
    if "aid" in names:
        calls["aid"] = ("aid", "aid_summary", year)
    if "transfers" in names:
        calls["transfers"] = ("transfer", "counts_by_stage")
    return calls


def _link(role: str, menu_key: str, endpoint: str, **args: Any) -> str | None:
    return url_for(endpoint, **args) if menu.allowed(role, menu_key) else None


def _enrolment(role: str, answers: dict[str, Any]) -> dict[str, Any]:
    by: dict[str, Any] = {}
    for dimension, param in ENROLMENT_DIMENSIONS.items():
        result = answers[dimension]
        by[dimension] = {"title": result["title"], "total": result["total"], "rows": [
            {**row, "link": _link(role, "students", "web.students", **{param: row["key"], "counted": 1})
             if row["key"] else None} for row in result["rows"]]}
    return {"by": by, "excluded": answers["college"].get("excluded", [])}


def _status_changes(role: str, result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "rows": [{**row, "link": _link(role, "dashboard", "dashboard_web.status_changes",
                                                      month=row["month"], kind=row["kind"])}
                               for row in result["rows"]]}


def _occupancy(role: str, report: dict[str, Any]) -> dict[str, Any]:
    return {"totals": report["totals"],
            "buildings": [{**b, "link": _link(role, "housing_residents", "housing_web.residents", building=b["code"])}
                          for b in report["buildings"]],
            "colleges": [{"college_code": c["college_code"], "residents": c["residents"],
                          "link": _link(role, "housing_residents", "housing_web.residents",
                                        college=c["college_code"], housed=1)}
                         for c in report["colleges"] if c["college_code"]]}


def _aid(role: str, summary: dict[str, Any]) -> dict[str, Any]:
    year = summary["academic_year"]
    return {"academic_year": year,
            "by_programme": [{**p, "link": _link(role, "aid_registers", "aid_web.registers", year=year,
                                                 programme_code=p["programme_code"])}
                             for p in summary["by_programme"]],
            "by_level": [{**lv, "link": _link(role, "aid_needy", "aid_web.needy", year=year, level=lv["level"])}
                         for lv in summary["by_level"]]}


def _transfers(role: str, result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "rows": [{**row, "link": _link(role, "transfer_list", "transfer_web.transfers",
                                                      direction=row["direction"], state=row["state"])}
                               for row in result["rows"]]}


def _failure(outcome: Outcome) -> Exception | None:
    if outcome.ok:
        return None
    if isinstance(outcome.error, Unauthenticated):
        raise outcome.error
    return outcome.error


def _missing(name: str, error: Exception) -> dict[str, Any]:
    area = AREAS[name]
    if isinstance(error, ServiceUnavailable):
        log.warning("dashboard area unavailable", extra={"fields": {"area": name, "service": area.service,
                                                                     "reason": error.reason}})
        message = f"{service_label(area.service)}服务暂时不可用，{area.label}图表暂时无法显示。"
    elif isinstance(error, Forbidden):
        message = f"您无权查看{area.label}统计。"
    else:
        log.error("dashboard area %s failed: %r", name, error)
        message = f"{service_label(area.service)}服务返回错误，{area.label}图表暂时无法显示。"
    return {"area": name, "label": area.label, "service": area.service, "message": message}


def collect(caller: Caller) -> dict[str, Any]:
    """Every area the caller may see: its chart data with links, or null and a `missing` entry."""
    names = areas_for(caller.role)
    year = current_academic_year()
    outcomes = auth.rpc().call_many(_calls(names, year), caller=caller, timeout=timeout()) if names else {}
    areas: dict[str, Any] = {}
    missing: list[dict[str, Any]] = []
    builders = {"status_changes": _status_changes, "occupancy": _occupancy, "aid": _aid, "transfers": _transfers}
    for name in names:
        if name == "enrolment":
            parts = {by: outcomes[f"enrolment:{by}"] for by in ENROLMENT_DIMENSIONS}
            error = next((e for e in (_failure(o) for o in parts.values()) if e is not None), None)
            value = None if error else _enrolment(caller.role, {by: o.value for by, o in parts.items()})
        else:
            error = _failure(outcomes[name])
            value = None if error else builders[name](caller.role, outcomes[name].value)
        areas[name] = value
        if error is not None:
            missing.append(_missing(name, error))
    return {"areas": areas, "missing": missing}


@bp.get("/dashboard")
def dashboard() -> str:
    caller = auth.require_login()
    _page(caller, "dashboard")
    data = collect(caller)
    return _render("dashboard.html", caller, [("数据看板", None)], data=data)


@api_bp.get("/dashboard")
def dashboard_api() -> Response:
    caller = auth.require_login()
    _page(caller, "dashboard")
    return jsonify(collect(caller))


@bp.get("/dashboard/status-changes")
def status_changes() -> str:
    """The changes behind one bar of the 学籍异动 chart: that month and kind, in the caller's scope."""
    caller = auth.require_login()
    _page(caller, "dashboard")
    month = request.args.get("month", "").strip()[:7]
    kind = request.args.get("kind", "").strip()[:32]
    if not month:
        raise Invalid("请选择月份")
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    result = auth.call("roster", "list_status_changes", month, kind, page, per_page)
    params = {"month": month, **({"kind": kind} if kind else {})}
    return _render("dashboard_changes.html", caller,
                   [("数据看板", url_for("dashboard_web.dashboard")), ("学籍异动明细", None)],
                   result=result, params=params, pagination=Pagination(page, per_page, int(result["total"])),
                   page_sizes=PAGE_SIZES)
