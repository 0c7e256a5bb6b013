"""学籍 import/export pages and API against the real roster service (identity is the stand-in)."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from gateway.tests.helpers import api_login, web_login
from services.common.caller import CONTEXT_KEY, system_caller
from services.common.migrate import upgrade
from services.roster.service import RosterService
from services.roster.tests.test_import import person, workbook

XHR = {"X-Requested-With": "XMLHttpRequest"}


@pytest.fixture
def client(fresh_amqp_uri: str, tmp_path: Any, start_services: Callable[..., dict[str, Any]],
           container_factory: Any, make_app: Callable[..., Flask]) -> FlaskClient:
    from nameko.standalone.rpc import ClusterRpcProxy

    url = f"sqlite:///{tmp_path}/roster.sqlite3"
    upgrade("roster", url)
    start_services(fresh_amqp_uri, "identity")
    container_factory(RosterService, {"AMQP_URI": fresh_amqp_uri, "ROSTER_DATABASE_URL": url}).start()
    with ClusterRpcProxy({"AMQP_URI": fresh_amqp_uri}, timeout=30,
                         context_data={CONTEXT_KEY: system_caller("test").to_header()}) as rpc:
        rpc.roster.upsert_org_units([
            {"code": "01", "name": "计算机学院", "kind": "college"},
            {"code": "0101", "name": "计科", "kind": "major", "parent_code": "01"},
            {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
        ])
    return make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=30.0).test_client()


def csrf(client: FlaskClient) -> str:
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return token.value


def upload(client: FlaskClient, rows: list[dict[str, Any]], **options: str) -> str:
    data = {"csrf_token": csrf(client), "file": (io.BytesIO(base64.b64decode(workbook(rows))), "新生.xlsx"),
            **options}
    response = client.post("/roster/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_import_dialog_template_errors_and_annotated_download(client: FlaskClient) -> None:
    web_login(client, "2001004")  # IT centre
    page = client.get("/roster/import").get_data(as_text=True)
    assert "下载模板" in page and "仅导入正确的行" in page and "更新已经存在的数据" in page
    template = client.get("/roster/template.xlsx")
    assert template.status_code == 200 and "attachment" in template.headers["Content-Disposition"]
    assert load_workbook(io.BytesIO(template.data)).worksheets[0]["C1"].value == "姓名"

    page = upload(client, [person(1), person(2, gender="X")])
    assert "未导入任何数据" in page and "不在代码表中" in page
    link = re.search(r'href="(/roster/import/result/[^"]+\.xlsx)"', page)
    assert link is not None
    annotated = load_workbook(io.BytesIO(client.get(link.group(1)).data))
    assert "错误说明" in annotated.sheetnames

    page = upload(client, [person(1), person(2)])
    assert "导入完成：新增 2 条" in page
    page = upload(client, [person(1), person(2)])
    assert "新增 0 条" in page and "未变化 2 条" in page

    web_login(client, "2001001")  # counselor: no import page, but the annotated file is not theirs either
    assert client.get("/roster/import").status_code == 403
    assert client.get(link.group(1)).status_code == 403


def test_export_button_and_masked_export(client: FlaskClient) -> None:
    web_login(client, "2001004")
    upload(client, [person(1), person(2)])
    web_login(client, "2001001")  # counselor of 2023010101
    response = client.get("/roster/export.xlsx?q=")
    assert response.status_code == 200
    ws = load_workbook(io.BytesIO(response.data)).worksheets[0]
    headers = [c.value for c in ws[1]]
    assert ws.max_row == 3 and "*" in ws.cell(row=2, column=headers.index("身份证件号") + 1).value


def test_problem_records_codes_and_audit_pages(client: FlaskClient) -> None:
    web_login(client, "2001002")  # student affairs
    assert "全库查重" in client.get("/roster/problems").get_data(as_text=True)
    page = client.post("/roster/problems", data={"csrf_token": csrf(client), "action": "scan"}).get_data(as_text=True)
    assert "查重完成" in page
    assert "汉族" in client.get("/roster/codes?table=ethnicity").get_data(as_text=True)
    saved = client.post("/roster/codes", data={"csrf_token": csrf(client), "table": "health", "code": "7",
                                               "label": "其他情况", "active": "1"}, follow_redirects=True)
    assert "保存成功" in saved.get_data(as_text=True) and "其他情况" in saved.get_data(as_text=True)
    assert "审计链完整" in client.get("/roster/audit?verify=1").get_data(as_text=True)


def test_api_import_and_codes(client: FlaskClient) -> None:
    api_login(client, "2001004")
    response = client.post("/api/v1/roster/import", json={"content": workbook([person(1)])}, headers=XHR)
    assert response.status_code == 200 and response.get_json()["imported"] == 1
    response = client.post("/api/v1/roster/import", json={"content": "***"}, headers=XHR)
    assert response.status_code == 400
    assert client.get("/api/v1/roster/codes").get_json()["ethnicity"]["label"] == "民族"
    assert client.put("/api/v1/roster/codes/health/7", json={"label": "x"}, headers=XHR).status_code == 403


def test_record_page_edit_request_review_and_statistics(client: FlaskClient) -> None:
    web_login(client, "2001004")
    upload(client, [person(1), person(2)])
    web_login(client, "2001001")  # counselor of 2023010101
    page = client.get("/roster/students/202301010101").get_data(as_text=True)
    assert "直接修改" in page and "需申请" in page and "汉族" in page
    page = client.post("/roster/students/202301010101", data={
        "csrf_token": csrf(client), "f_phone": "13911112222", "f_name": "张新", "note": "户口本更名"}).get_data(
        as_text=True)
    assert "修改成功，关键字段已提交变更申请" in page and "13911112222" in page and "待学生处审批" in page
    page = client.post("/roster/students/202301010101", data={"csrf_token": csrf(client), "f_phone": "1"})
    assert "联系电话" in page.get_data(as_text=True)

    web_login(client, "2001002")  # student affairs approves
    page = client.get("/roster/requests?state=pending_final").get_data(as_text=True)
    assert "姓名：学生零一 → 张新" in page
    request_id = re.search(r'name="request_id" value="(\d+)"', page)
    assert request_id is not None
    page = client.post("/roster/requests", data={"csrf_token": csrf(client), "request_id": request_id.group(1),
                                                 "approve": "1"}).get_data(as_text=True)
    assert "审核完成：已通过" in page
    page = client.get("/roster/students/202301010101").get_data(as_text=True)
    assert "张新" in page and "操作记录" in page
    stats = client.get("/roster/statistics?by=class").get_data(as_text=True)
    assert "计科2301" in stats and "共 2 人" in stats
    assert "学生" in client.get("/roster/policies").get_data(as_text=True)


def test_student_requests_a_change_of_their_own_record(client: FlaskClient) -> None:
    web_login(client, "2001004")
    upload(client, [person(1), person(2)])
    web_login(client, "202301010102")
    response = client.get("/roster/me")
    assert response.headers["Location"].endswith("/roster/students/202301010102")
    page = client.get("/roster/students/202301010102").get_data(as_text=True)
    assert "提交申请" in page and "需申请" in page and "直接修改" not in page
    page = client.post("/roster/students/202301010102", data={"csrf_token": csrf(client), "f_phone": "13700000000",
                                                               "note": "换号"}).get_data(as_text=True)
    assert "变更申请已提交" in page and "待辅导员审核" in page
    assert client.get("/roster/students/202301010101").status_code == 403
    assert client.get("/roster/import").status_code == 403


def test_clearance_problems_are_listed_reprocessed_and_closed_on_the_problems_page(client: FlaskClient,
                                                                                   tmp_path: Any) -> None:
    from services.common.db import Database
    from services.roster import clearance
    from tests.harness import clearance_body

    roster_db = Database(f"sqlite:///{tmp_path}/roster.sqlite3")
    for number in ("209999990001", "209999990002"):  # nobody in the register has these numbers
        clearance.receive(roster_db, "clearance.completed", clearance_body(number))
    web_login(client, "2001002")  # student affairs
    page = client.get("/roster/problems").get_data(as_text=True)
    assert "离校事件问题（2 条）" in page and "209999990001" in page and "209999990002" in page
    [first, second] = [int(n) for n in re.findall(r'name="event_row" value="(\d+)"', page)[::2]]
    again = client.post("/roster/problems", data={"csrf_token": csrf(client), "action": "clearance_reprocess",
                                                  "event_row": str(first)}).get_data(as_text=True)
    assert "离校事件已重新处理" in again and "离校事件问题（2 条）" in again  # still unknown: still listed
    refused = client.post("/roster/problems", data={"csrf_token": csrf(client), "action": "clearance_dismiss",
                                                    "event_row": str(second), "note": " "}).get_data(as_text=True)
    assert "请填写关闭原因" in refused and "离校事件问题（2 条）" in refused
    closed = client.post("/roster/problems", data={"csrf_token": csrf(client), "action": "clearance_dismiss",
                                                   "event_row": str(second), "note": "已在离校系统核实为测试数据"})
    page = closed.get_data(as_text=True)
    assert "离校事件已人工关闭" in page and "离校事件问题（1 条）" in page and "209999990002" not in page
