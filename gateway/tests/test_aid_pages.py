"""资助管理 pages of issue 7's second part against the real aid service (in-process nameko container on a
fresh vhost, SQLite; identity is the stand-in): 批量审核 with one refused for quota, 困难认定导入 with an error
row then a good sheet, and the 资助项目 editor saving a change and refusing bad values."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook, load_workbook

from gateway.tests import cluster
from gateway.tests.helpers import web_login
from services.aid import applications, registers
from services.aid.service import AidService
from services.aid.tests.factories import caller
from services.aid.tests.flow import enrol
from services.common.caller import AID_AUDITOR, AID_OPERATOR, Scope
from services.common.db import Database
from services.common.migrate import upgrade
from services.common.topology import bindings_of, declare

YEAR = "2026-2027"
CLASS = "2023010101"  # the stand-in counselor 2001001's class
NUMBERS = [f"{CLASS}{n:02d}" for n in range(1, 6)]
OPERATOR, AUDITOR, COUNSELOR = "2001011", "2001012", "2001001"
STAFF = {OPERATOR: {"display_name": "资助中心张老师", "role": AID_OPERATOR, "scope": Scope("institution")},
         AUDITOR: {"display_name": "资助中心刘老师", "role": AID_AUDITOR, "scope": Scope("institution")}}
HEADER = ["学号", "姓名", "学年", "认定等级", "认定理由", "低保", "建档立卡", "孤残", "烈士子女", "证明材料"]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Aid's database migrated once with five students of the counselor's class; every test gets a copy."""
    path = tmp_path_factory.mktemp("aid-pages") / "aid.sqlite3"
    upgrade("aid", f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    enrol(db, *NUMBERS)
    db.dispose()
    return path


@pytest.fixture
def env(fresh_amqp_uri: str, tmp_path: Path, migrated: Path, monkeypatch: pytest.MonkeyPatch,
        start_services: Callable[..., dict[str, Any]], container_factory: Any,
        make_app: Callable[..., Flask]) -> Iterator[dict[str, Any]]:
    for username, account in STAFF.items():
        monkeypatch.setitem(cluster.ACCOUNTS, username, account)
    shutil.copy(migrated, tmp_path / "aid.sqlite3")
    url = f"sqlite:///{tmp_path / 'aid.sqlite3'}"
    declare(fresh_amqp_uri, bindings_of([AidService]))
    start_services(fresh_amqp_uri, "identity")
    container_factory(AidService, {"AMQP_URI": fresh_amqp_uri, "AID_DATABASE_URL": url}).start()
    db = Database(url)
    yield {"app": make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=15.0), "db": db}
    db.dispose()


def signed_in(app: Flask, username: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert web_login(client, username).status_code == 302
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return client, token.value


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)


def workbook(*rows: list[Any]) -> bytes:
    wb = Workbook()
    wb.active.append(HEADER)
    for r in rows:
        wb.active.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def upload(client: FlaskClient, token: str, data: bytes) -> str:
    answer = client.post("/aid/identifications", data={"csrf_token": token, "action": "preview",
                                                        "file": (io.BytesIO(data), "认定.xlsx")},
                         content_type="multipart/form-data")
    assert answer.status_code == 200
    return text_of(answer)


# -- 批量审核 ------------------------------------------------------------------------------------------


def test_batch_approval_shows_each_outcome_with_one_refused_for_quota(env: dict[str, Any]) -> None:
    db = env["db"]
    staff = caller(AID_OPERATOR)
    for n in NUMBERS[:3]:
        registers.identify_needy(db, staff, {"student_number": n, "academic_year": YEAR, "level": "困难",
                                             "reasons": "家庭收入低", "evidence": ["证明"]})
    for level, extra in (("programme", {}), ("college", {"college_code": "01"}), ("class", {"class_code": CLASS})):
        registers.allocate_quota(db, staff, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": level,
                                             "places": 2, **extra})
    ids = [applications.apply(db, caller("student", "self", n), {
        "student_number": n, "programme_code": "GJZXJ", "academic_year": YEAR, "statement": "申请助学金"})["id"]
        for n in NUMBERS[:3]]

    client, token = signed_in(env["app"], COUNSELOR)
    queue = text_of(client.get("/aid/reviews"))
    assert 'id="batch-review"' in queue and 'data-select-all="ids"' in queue
    assert all(f'name="ids" value="{i}" form="batch-review"' in queue for i in ids)

    refused = text_of(client.post("/aid/reviews", data={"csrf_token": token, "action": "batch", "decision": "return",
                                                        "ids": [str(i) for i in ids], "reason": ""}))
    assert "退回时必须填写原因" in refused
    page = text_of(client.post("/aid/reviews", data={"csrf_token": token, "action": "batch", "decision": "approve",
                                                     "ids": [str(i) for i in ids]}))
    assert "批量审核完成：通过 2 条，未能办理 1 条" in page
    outcomes = re.findall(r'/aid/applications/(\d+)">\d+</a></td>\s*<td><span class="tag ([\w-]+)">([^<]+)</span>',
                          page)
    shown = [(int(i), tag, message) for i, tag, message in outcomes]
    assert [(i, tag) for i, tag, _ in shown] == [(ids[0], "tag-success"), (ids[1], "tag-success"),
                                                 (ids[2], "tag-danger")]
    assert "名额或资金已用完" in shown[2][2]
    states = [applications.get_application(db, staff, i)["status"] for i in ids]
    assert states == ["counselor_passed", "counselor_passed", "applied"]


# -- 困难认定导入 ----------------------------------------------------------------------------------------


def test_identification_import_with_an_error_row_then_a_good_sheet(env: dict[str, Any]) -> None:
    client, token = signed_in(env["app"], COUNSELOR)
    template = client.get("/aid/identifications/template.xlsx")
    assert template.status_code == 200
    assert [c.value for c in load_workbook(io.BytesIO(template.data)).worksheets[0][1]][:5] == HEADER[:5]

    bad = workbook([NUMBERS[0], "李娜", YEAR, "困难", "父亲重病", "", "是", "", "", "扶贫手册"],
                   [NUMBERS[1], "李娜", YEAR, "很困难", "母亲失业", "", "", "", "", "证明"])
    page = upload(client, token, bad)
    assert "发现 1 处错误（1 行），不能导入" in page
    assert re.search(r"<td>3</td><td>D</td><td>认定等级</td><td>很困难</td><td>认定级别“很困难”无效", page)
    link = re.search(r'href="(/aid/identifications/result/[^"]+\.xlsx)"', page)
    assert link is not None and 'name="token"' not in page
    annotated = load_workbook(io.BytesIO(client.get(link.group(1)).data))
    assert annotated.worksheets[0]["D3"].comment is not None
    assert registers.needy_register(env["db"], caller(AID_OPERATOR), YEAR)["total"] == 0

    good = workbook([NUMBERS[0], "李娜", YEAR, "困难", "父亲重病", "", "是", "", "", "扶贫手册"],
                    [NUMBERS[1], "李娜", YEAR, "一般困难", "母亲失业", "", "", "", "", "证明"])
    page = upload(client, token, good)
    assert "预览：共 2 行，全部正确" in page and "（新认定）" in page and "建档立卡" in page
    kept = re.search(r'name="token" value="([^"]+)"', page)
    assert kept is not None
    applied = client.post("/aid/identifications", data={"csrf_token": token, "action": "apply",
                                                        "token": kept.group(1)})
    assert "导入完成：已保存 2 名学生的困难认定" in text_of(applied)
    levels = {r["student_number"]: r["level"]
              for r in registers.needy_register(env["db"], caller(AID_OPERATOR), YEAR)["items"]}
    assert levels == {NUMBERS[0]: "困难", NUMBERS[1]: "一般困难"}
    again = client.post("/aid/identifications", data={"csrf_token": token, "action": "apply", "token": kept.group(1)})
    assert "文件已过期" in text_of(again)  # the same upload cannot be imported twice


# -- 资助项目 ---------------------------------------------------------------------------------------------


def programme_form(code: str = "GJZXJ", **changes: str) -> dict[str, str]:
    form = {"original_code": code, "code": code, "name": "国家助学金", "kind": "grant", "amount": "", "max_amount": "",
            "max_amount_postgraduate": "", "tier_特别困难": "4400", "tier_困难": "3700", "tier_一般困难": "3000",
            "requires_need": "1", "min_need_level": "一般困难", "min_year": "1", "max_rank_percent": "",
            "payer": "中央与地方财政", "instalments": "10", "active": "1"}
    return {**form, **changes}


def test_programme_editor_saves_a_change_and_refuses_bad_values(env: dict[str, Any]) -> None:
    client, token = signed_in(env["app"], OPERATOR)
    page = text_of(client.get("/aid/programmes"))
    assert "国家奖学金" in page and "特别困难 4400 / 困难 3700 / 一般困难 3000" in page and "新增资助项目" in page

    saved = client.post("/aid/programmes", data={"csrf_token": token, **programme_form(**{"tier_特别困难": "4600"})},
                        follow_redirects=True)
    assert "已保存资助项目 GJZXJ" in text_of(saved) and "特别困难 4600" in text_of(saved)
    grant = next(p for p in registers.list_programmes(env["db"], caller(AID_OPERATOR)) if p["code"] == "GJZXJ")
    assert grant["tiers"]["特别困难"] == 4600 and grant["instalments"] == 10

    page = text_of(client.post("/aid/programmes", data={"csrf_token": token, **programme_form(amount="很多")}))
    assert "固定金额须为整数" in page and "请改正标红的项" in page
    page = text_of(client.post("/aid/programmes", data={"csrf_token": token, **programme_form(min_year="0")}))
    assert "最低年级须在 1–8 之间" in page and 'value="0"' in page  # the posted value is kept for correction
    page = text_of(client.post("/aid/programmes", data={"csrf_token": token, **programme_form(
        original_code="", code="GJZXJ")}))
    assert "项目代码 GJZXJ 已存在" in page
    grant = next(p for p in registers.list_programmes(env["db"], caller(AID_OPERATOR)) if p["code"] == "GJZXJ")
    assert grant["min_year"] == 1 and grant["amount"] is None

    auditor, a_token = signed_in(env["app"], AUDITOR)
    assert "新增资助项目" not in text_of(auditor.get("/aid/programmes"))
    assert auditor.post("/aid/programmes", data={"csrf_token": a_token, **programme_form()}).status_code == 403
    counselor, _ = signed_in(env["app"], COUNSELOR)
    assert counselor.get("/aid/programmes").status_code == 403


def test_the_new_pages_are_in_the_aid_menus(env: dict[str, Any]) -> None:
    client, _ = signed_in(env["app"], OPERATOR)
    home = text_of(client.get("/"))
    assert "困难认定导入" in home and "资助项目" in home
    auditor, _ = signed_in(env["app"], AUDITOR)
    home = text_of(auditor.get("/"))
    assert "资助项目" in home and "困难认定导入" not in home
    assert auditor.get("/aid/identifications").status_code == 403


# -- 名额分配: funds only (A2) ------------------------------------------------------------------------------


def test_the_quota_page_allocates_funds_without_places(env: dict[str, Any]) -> None:
    client, token = signed_in(env["app"], OPERATOR)
    form = text_of(client.get(f"/aid/quotas?year={YEAR}&programme_code=GJZXJ"))
    places = re.search(r'<input id="places" name="places"[^>]*>', form)
    assert places is not None and " required" not in places.group(0)  # places may be left open
    saved = client.post(f"/aid/quotas?year={YEAR}&programme_code=GJZXJ",
                        data={"csrf_token": token, "level": "programme", "places": "", "funds": "50000"})
    assert saved.status_code == 302
    page = text_of(client.get(saved.headers["Location"]))
    cells = re.findall(r"<td>([^<]*)</td>", page.split("<tbody>", 1)[1].split("</tbody>", 1)[0])
    assert cells[:6] == ["全校", "全校", "不限", "0", "50000", "0"]
    assert registers.list_quotas(env["db"], caller(AID_OPERATOR), "GJZXJ", YEAR)[0]["places"] is None
    # Neither places nor funds: refused with the reason, nothing saved.
    refused = text_of(client.post(f"/aid/quotas?year={YEAR}&programme_code=GJZXJ",
                                  data={"csrf_token": token, "level": "college", "college_code": "01",
                                        "places": "", "funds": ""}))
    assert "请填写名额或资金（至少一项）" in refused
    assert len(registers.list_quotas(env["db"], caller(AID_OPERATOR), "GJZXJ", YEAR)) == 1
