"""The JSON API through the Flask test client, against stand-in services over RabbitMQ."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.app import rpc_pool
from gateway.tests import cluster
from gateway.tests.helpers import api_login

SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                    "Content-Security-Policy")


def error_of(response: Any) -> dict[str, str]:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


# -- session -----------------------------------------------------------------------------------


def test_login_returns_who_and_sets_an_httponly_session_cookie(client: FlaskClient) -> None:
    response = api_login(client, "202301010101")
    assert response.status_code == 200
    assert response.get_json() == {"username": "202301010101", "role": "student",
                                   "role_label": "学生", "must_change_password": True}
    cookies = response.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("xueji_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    csrf_cookie = next(c for c in cookies if c.startswith("xueji_csrf="))
    assert "HttpOnly" not in csrf_cookie
    login = [c for s, m, c in cluster.SEEN if m == "login"]
    assert login == [None]  # login goes without a caller context

    who = client.get("/api/v1/session")
    assert who.status_code == 200
    assert who.get_json()["scope"] == {"kind": "self", "ids": ["202301010101"]}


def test_session_cookie_holds_only_the_identity_session_id(app: Flask,
                                                           client: FlaskClient) -> None:
    api_login(client, "2001001")
    cookie = client.get_cookie("xueji_session")
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    data = serializer.loads(cookie.value)
    assert list(data) == ["sid"]
    assert cluster.SESSIONS[data["sid"]] == "2001001"


@pytest.mark.parametrize(("username", "password", "message"), [
    ("2001001", "wrong-password", "用户名或密码错误"),
    ("9999999", cluster.PASSWORD, "用户名或密码错误"),
    ("2001009", cluster.PASSWORD, "账号已锁定，请 15 分钟后再试"),
])
def test_failed_login_is_401_with_identity_message(
    client: FlaskClient, username: str, password: str, message: str
) -> None:
    response = api_login(client, username, password)
    assert response.status_code == 401
    assert error_of(response) == {"code": "unauthenticated", "message": message}
    assert client.get_cookie("xueji_session") is None


@pytest.mark.parametrize("body", [{"username": "2001001"}, {"password": "x"}, [], "text"])
def test_login_without_credentials_is_400(client: FlaskClient, body: Any) -> None:
    response = client.post("/api/v1/session", data=json.dumps(body),
                           content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_logout_ends_the_identity_session(client: FlaskClient) -> None:
    api_login(client, "2001001")
    assert len(cluster.SESSIONS) == 1
    response = client.delete("/api/v1/session", headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 204
    assert cluster.SESSIONS == {}
    assert client.get("/api/v1/students").status_code == 401


def test_session_ended_at_identity_logs_the_browser_out(client: FlaskClient) -> None:
    api_login(client, "2001001")
    assert client.get("/api/v1/students").status_code == 200
    cluster.SESSIONS.clear()  # e.g. the account was disabled
    response = client.get("/api/v1/students")
    assert response.status_code == 401
    assert error_of(response) == {"code": "unauthenticated", "message": "请先登录"}
    assert client.get_cookie("xueji_session") is None


# -- CSRF --------------------------------------------------------------------------------------


def test_cookie_authenticated_write_needs_csrf_proof(client: FlaskClient) -> None:
    api_login(client, "2001001")
    response = client.delete("/api/v1/session")
    assert response.status_code == 403
    assert error_of(response) == {"code": "csrf_failed",
                                  "message": "请求校验失败，请刷新页面后重试"}
    response = client.delete("/api/v1/session", headers={"X-CSRF-Token": "forged" * 8})
    assert response.status_code == 403
    assert len(cluster.SESSIONS) == 1

    token = client.get_cookie("xueji_csrf")
    assert token is not None
    response = client.delete("/api/v1/session", headers={"X-CSRF-Token": token.value})
    assert response.status_code == 204
    assert cluster.SESSIONS == {}


def test_csrf_token_changes_at_login(client: FlaskClient) -> None:
    client.get("/api/v1/health")
    before = client.get_cookie("xueji_csrf")
    api_login(client, "2001001")
    after = client.get_cookie("xueji_csrf")
    assert before is not None and after is not None
    assert before.value != after.value


# -- students ----------------------------------------------------------------------------------


def test_search_is_paged_and_scoped_by_the_service(client: FlaskClient) -> None:
    api_login(client, "2001001")  # counselor of class 2023010101 (25 students)
    response = client.get("/api/v1/students?page=2&per_page=10")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["total"], body["page"], body["per_page"]) == (25, 2, 10)
    assert [s["student_number"] for s in body["items"]] == [
        f"2023010101{n:02d}" for n in range(11, 21)]
    assert {s["class_code"] for s in body["items"]} == {"2023010101"}

    body = client.get("/api/v1/students?q=张三").get_json()
    assert [s["name"] for s in body["items"]] == ["张三"]
    assert (body["page"], body["per_page"]) == (1, 20)

    api_login(client, "2001002")  # student affairs: the whole institution
    assert client.get("/api/v1/students?per_page=100").get_json()["total"] == len(cluster.STUDENTS)


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=x", "per_page=0",
                                   "per_page=101", "per_page=ten", "q=" + "x" * 65])
def test_bad_paging_is_400_before_any_rpc(client: FlaskClient, query: str) -> None:
    api_login(client, "2001001")
    cluster.SEEN.clear()
    response = client.get(f"/api/v1/students?{query}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"
    assert [m for _, m, _ in cluster.SEEN if m == "search_students"] == []


def test_service_side_invalid_is_400_with_its_message(client: FlaskClient) -> None:
    api_login(client, "2001001")
    response = client.get("/api/v1/students?q=%25")
    assert response.status_code == 400
    assert error_of(response) == {"code": "invalid", "message": "查询条件不能包含通配符"}


def test_unauthenticated_api_is_401(client: FlaskClient) -> None:
    for path in ("/api/v1/students", "/api/v1/students/202301010101",
                 "/api/v1/housing/occupancy/202301010101", "/api/v1/accounts/2001001",
                 "/api/v1/session"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert error_of(response)["code"] == "unauthenticated"
    # Without a session cookie nothing reaches a service.
    assert [m for _, m, _ in cluster.SEEN] == []


def test_student_in_and_out_of_scope(client: FlaskClient) -> None:
    api_login(client, "2001001")
    response = client.get("/api/v1/students/202301010102")
    assert response.status_code == 200
    assert response.get_json()["status_label"] == "休学"

    response = client.get("/api/v1/students/202302010101")
    assert response.status_code == 403
    assert error_of(response) == {"code": "forbidden",
                                  "message": "学生 202302010101 不在您的数据权限范围内"}

    response = client.get("/api/v1/students/209901010101")
    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found",
                                  "message": "未找到学号为 209901010101 的学生"}


def test_unexpected_service_failure_is_500_without_details(client: FlaskClient) -> None:
    api_login(client, "2001002")
    response = client.get(f"/api/v1/students/{cluster.BROKEN_RECORD}")
    assert response.status_code == 500
    assert error_of(response) == {"code": "internal_error",
                                  "message": "系统内部错误，请稍后重试"}


def test_occupancy_and_account(client: FlaskClient) -> None:
    api_login(client, "202301010101")
    response = client.get("/api/v1/housing/occupancy/202301010101")
    assert response.get_json() == {"student_number": "202301010101",
                                   "bed": cluster.BEDS["202301010101"]}
    account = client.get("/api/v1/accounts/202301010101").get_json()
    assert account["display_name"] == "张三" and account["must_change_password"] is True
    # A student sees nobody else's.
    assert client.get("/api/v1/housing/occupancy/202301010102").status_code == 403
    assert client.get("/api/v1/accounts/202301010102").status_code == 403


def test_correlation_id_reaches_the_services_and_comes_back(client: FlaskClient) -> None:
    api_login(client, "2001001")
    cluster.SEEN.clear()
    response = client.get("/api/v1/students/202301010101", headers={"X-Request-ID": "req-0042"})
    assert response.headers["X-Request-ID"] == "req-0042"
    assert [(s, m, c["correlation_id"], c["username"], c["session_id"] is not None)
            for s, m, c in cluster.SEEN if c] == [
        ("roster", "get_student", "req-0042", "2001001", True)]
    # resolve_session itself runs without a caller context.
    assert [c for _, m, c in cluster.SEEN if m == "resolve_session"] == [None]

    response = client.get("/api/v1/students/202301010101",
                          headers={"X-Request-ID": "bad id; <script>" + "x" * 80})
    generated = response.headers["X-Request-ID"]
    assert len(generated) == 32 and generated.isalnum()
    assert cluster.SEEN[-1][2]["correlation_id"] == generated  # type: ignore[index]


def test_pool_reuses_proxies_across_requests(app: Flask, client: FlaskClient) -> None:
    api_login(client, "2001001")
    for _ in range(5):
        assert client.get("/api/v1/students").status_code == 200
    assert rpc_pool(app).created == 1


# -- errors, headers, health -------------------------------------------------------------------


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "您访问的内容不存在"}
    response = client.put("/api/v1/health")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_security_headers_on_every_kind_of_response(client: FlaskClient) -> None:
    responses = [client.get("/api/v1/health"), client.get("/api/v1/students"),
                 client.get("/api/v1/nothing-here"), client.get("/login"),
                 client.get("/static/app.css")]
    for response in responses:
        for header in SECURITY_HEADERS:
            assert header in response.headers, (response.request.path, header)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert responses[0].headers["Cache-Control"] == "no-store"


def test_health_all_ok(client: FlaskClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert set(body["services"]) == {"identity", "roster", "housing"}
    assert body["services"]["roster"]["students"] == len(cluster.STUDENTS)
    assert all(s["status"] == "ok" for s in body["services"].values())


def test_health_degraded_names_the_missing_services(
    amqp_uri: str, cluster_up: Any, make_app: Callable[..., Flask]
) -> None:
    app = make_app(amqp_uri, XUEJI_HEALTH_SERVICES=("identity", "roster", "housing", "aid",
                                                    "transfer"))
    started = time.monotonic()
    response = app.test_client().get("/api/v1/health")
    assert time.monotonic() - started < 5.0  # 2 s per service, asked at once
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["services"]["aid"] == {"status": "unavailable"}
    assert body["services"]["transfer"] == {"status": "unavailable"}
    assert body["services"]["identity"]["status"] == "ok"


# -- outages -----------------------------------------------------------------------------------


def test_unknown_service_is_503_naming_it(
    fresh_amqp_uri: str, start_services: Callable[..., dict[str, Any]],
    make_app: Callable[..., Flask]
) -> None:
    start_services(fresh_amqp_uri, "identity", "roster")  # no housing at all
    client = make_app(fresh_amqp_uri).test_client()
    api_login(client, "2001001")
    response = client.get("/api/v1/housing/occupancy/202301010101")
    assert response.status_code == 503
    assert error_of(response) == {"code": "service_unavailable",
                                  "message": "宿舍服务暂时不可用，请稍后重试"}
    assert client.get("/api/v1/students/202301010101").status_code == 200


def test_stopped_service_times_out_to_503(
    fresh_amqp_uri: str, start_services: Callable[..., dict[str, Any]],
    make_app: Callable[..., Flask]
) -> None:
    containers = start_services(fresh_amqp_uri, "identity", "roster")
    app = make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=1.0)
    client = app.test_client()
    api_login(client, "2001001")
    containers["roster"].stop()
    started = time.monotonic()
    response = client.get("/api/v1/students")
    assert 0.9 <= time.monotonic() - started < 4.0
    assert response.status_code == 503
    assert error_of(response)["message"] == "学籍服务暂时不可用，请稍后重试"
    assert rpc_pool(app).discarded == 1


def test_identity_down_means_503_not_logged_out(
    fresh_amqp_uri: str, start_services: Callable[..., dict[str, Any]],
    make_app: Callable[..., Flask]
) -> None:
    containers = start_services(fresh_amqp_uri, "identity", "roster")
    client = make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=1.0).test_client()
    api_login(client, "2001001")
    containers["identity"].stop()
    response = client.get("/api/v1/students")
    assert response.status_code == 503
    assert error_of(response)["message"] == "统一身份服务暂时不可用，请稍后重试"
    assert client.get_cookie("xueji_session") is not None


def test_request_log_lines_are_json_with_the_correlation_id(
    amqp_uri: str, cluster_up: Any, make_app: Callable[..., Flask],
    capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        app = make_app(amqp_uri, XUEJI_CONFIGURE_LOGGING=True)
        client = app.test_client()
        api_login(client, "2001001")
        client.get("/api/v1/students", headers={"X-Request-ID": "req-log-1"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()
                 if line.startswith("{")]
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    request_lines = [r for r in lines if r["msg"] == "request" and r["path"] == "/api/v1/students"]
    assert len(request_lines) == 1
    line = request_lines[0]
    assert line["service"] == "gateway"
    assert line["correlation_id"] == "req-log-1"
    assert (line["status"], line["user"], line["method"]) == (200, "2001001", "GET")
