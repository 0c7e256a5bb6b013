"""资助管理 pages and API through the real gateway app and real services (own processes): quotas,
identification, a student's application, every review level with a return, the national report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import BytesIO
from typing import Any

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook

from gateway.app import create_app, rpc_pool
from tests.harness import Cluster, student_rows, wait_for
from tests.integration.test_aid_withdrawal import YEAR, register

PASSWORD = "Xueji@2026"
STAFF = {"2000001": ("资助中心 张老师", "aid_operator", "institution", []),
         "2000002": ("资助中心 审核 刘老师", "aid_auditor", "institution", []),
         "2000003": ("辅导员 王老师", "counselor", "classes", ["2023010101"]),
         "2000004": ("副书记 赵老师", "deputy_secretary", "college", ["01"]),
         "2000005": ("宿管老师", "housing_centre", "institution", []),
         "2000006": ("学生处 陈老师", "student_affairs", "institution", [])}


@pytest.fixture
def site(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> Iterator[dict[str, Any]]:
    cluster = make_cluster(fresh_amqp_uri)
    cluster.start("identity", "roster", "aid")
    rows = student_rows(2)
    register(cluster, rows)
    wait_for(lambda: cluster.rpc("aid", "health")["students_known"] == 2, what="aid knows the students")
    wait_for(lambda: cluster.rpc("identity", "health")["accounts"] >= 2, what="student accounts")
    for username, (name, role, kind, ids) in STAFF.items():
        cluster.rpc("identity", "create_account", username, name, role, kind, ids, PASSWORD)
    cluster.rpc("identity", "set_password", rows[0]["student_number"], PASSWORD)
    app = create_app({"TESTING": True, "SECRET_KEY": "aid-web", "XUEJI_AMQP_URI": fresh_amqp_uri,
                      "XUEJI_RPC_TIMEOUT": 30.0, "XUEJI_CONFIGURE_LOGGING": False})
    yield {"app": app, "cluster": cluster, "rows": rows}
    rpc_pool(app).close()


def login(client: FlaskClient, username: str) -> str:
    client.get("/login")
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "next": "",
                                         "csrf_token": token.value})
    assert answer.status_code == 302
    if "/password" in answer.headers.get("Location", ""):  # a reset password must be changed first
        changed = client.post(answer.headers["Location"], data={
            "csrf_token": token.value, "old_password": PASSWORD, "new_password": PASSWORD + "x",
            "confirm": PASSWORD + "x"})
        assert changed.status_code in (200, 302)
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return token.value


def post(client: FlaskClient, token: str, path: str, **form: Any) -> str:
    answer = client.post(path, data={"csrf_token": token, **form}, follow_redirects=True)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_data(as_text=True)


def test_the_aid_chain_through_the_pages(site: dict[str, Any]) -> None:
    app, rows = site["app"], site["rows"]
    number, klass = rows[0]["student_number"], rows[0]["class_code"]

    operator = app.test_client()
    token = login(operator, "2000001")
    home = operator.get("/").get_data(as_text=True)
    for label in ("资助审核", "困难认定", "名额分配", "受助学生库", "资助报表"):
        assert label in home
    for level, extra in (("programme", {}), ("college", {"college_code": "01"}), ("class", {"class_code": klass})):
        page = post(operator, token, f"/aid/quotas?year={YEAR}&programme_code=GJZXJ", level=level, places="1",
                    funds="4400", **extra)
        assert "已保存" in page
    assert page.count("4400") >= 3

    counselor = app.test_client()
    c_token = login(counselor, "2000003")
    page = post(counselor, c_token, f"/aid/needy?year={YEAR}", student_number=number, level="特别困难",
                flags="建档立卡", id_number=rows[0]["national_id"], income_per_capita="2400", evidence="扶贫手册",
                reasons="建档立卡户")
    assert "已保存认定结果" in page and "****" in page and rows[0]["national_id"] not in page

    student = app.test_client()
    s_token = login(student, number)
    page = student.get(f"/aid/apply?year={YEAR}").get_data(as_text=True)
    assert "国家助学金" in page and "国家奖学金" in page
    page = post(student, s_token, f"/aid/apply?year={YEAR}", programme_code="GJZXJ", statement="家庭困难，申请助学金")
    assert "申请已提交" in page and "待辅导员审核" in page
    assert student.get("/aid/needy").status_code == 403

    queue = counselor.get("/aid/reviews").get_data(as_text=True)
    assert number in queue and "待辅导员审核" in queue
    app_id = site["cluster"].rpc("aid", "review_queue")["items"][0]["id"]
    post(counselor, c_token, "/aid/reviews", application_id=str(app_id), decision="approve")

    deputy = app.test_client()
    d_token = login(deputy, "2000004")
    page = post(deputy, d_token, "/aid/reviews", application_id=str(app_id), decision="return", reason="")
    assert "退回时必须填写原因" in page
    page = post(deputy, d_token, "/aid/reviews", application_id=str(app_id), decision="return", reason="缺证明")
    assert "已退回" in page
    mine = student.get("/aid/apply").get_data(as_text=True)
    assert "已退回" in mine and "缺证明" in mine
    post(student, s_token, f"/aid/apply?year={YEAR}", programme_code="GJZXJ", statement="已补充证明")
    post(counselor, c_token, "/aid/reviews", application_id=str(app_id), decision="approve")
    post(deputy, d_token, "/aid/reviews", application_id=str(app_id), decision="approve")
    post(operator, token, "/aid/reviews", application_id=str(app_id), decision="approve")
    auditor = app.test_client()
    a_token = login(auditor, "2000002")
    post(auditor, a_token, "/aid/reviews", application_id=str(app_id), decision="approve")

    detail = operator.get(f"/aid/applications/{app_id}").get_data(as_text=True)
    for who in ("2000003", "2000004", "2000001", "2000002", "缺证明", "谁审核谁负责"):
        assert who in detail
    page = post(operator, token, f"/aid/reports?year={YEAR}", kind="aided", what="check")
    assert "模板校验通过" in page and "新增 1 条" in page
    sheet = operator.get(f"/aid/reports/aided.xlsx?year={YEAR}")
    assert sheet.status_code == 200
    ws = load_workbook(BytesIO(sheet.data), read_only=True).worksheets[0]
    values = list(ws.iter_rows(values_only=True))
    assert values[0][:3] == ("学号", "姓名", "身份证件号") and values[1][0] == number and values[1][6] == 4400
    page = post(operator, token, f"/aid/reports?year={YEAR}", kind="aided", what="submit")
    assert "已报送 1 条" in page
    summary = operator.get(f"/api/v1/aid/summary?year={YEAR}").get_json()
    assert summary["by_programme"][0]["amount"] == 4400
    registers = post(operator, token, f"/aid/registers?year={YEAR}", what="check")
    assert "三库一致" in registers and number in registers


def test_other_roles_see_no_aid_data(site: dict[str, Any]) -> None:
    for username in ("2000005", "2000006"):
        client = site["app"].test_client()
        login(client, username)
        assert "资助管理" not in client.get("/").get_data(as_text=True)
        for path in ("/aid/needy", "/aid/reviews", "/aid/registers", "/aid/reports"):
            assert client.get(path).status_code == 403
        answer = client.get(f"/api/v1/aid/needy?year={YEAR}")
        assert answer.status_code == 403 and set(answer.get_json()) == {"error"}
