"""The gateway's account pages and JSON API against the real identity service (a nameko
container on the session's vhost, SQLite): the API authorization matrix, forced password
change, 个人中心, and account administration pages."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from gateway.app import create_app, rpc_pool
from services.common.authz_matrix import Matrix, http_outcome
from services.common.caller import ROLES
from services.common.db import Database
from services.identity import handlers
from services.identity.service import IdentityService
from services.identity.tests.factories import PASSWORD, SYSTEM, registered, staff
from services.identity.tests.test_authz_matrix import (
    ACTORS,
    IN_SCOPE,
    OUT_OF_SCOPE,
    STAFF,
    STUDENT_NUMBER,
    UNKNOWN,
    staff_workbook,
)

SA = "student_affairs"
EVERY_TARGET = {"own", "student_in_scope", "student_out_of_scope", "staff"}


@pytest.fixture
def db_backend() -> str:
    return "sqlite"


@pytest.fixture
def identity_db(migrated_db: Callable[[str], Database]) -> Database:
    db = migrated_db("identity")
    for role, (name, kind, ids) in ACTORS.items():
        if role != "student":
            staff(db, name, role, kind, ids)
    staff(db, STAFF, "counselor", "classes", ("2023010102",))
    for number, klass in ((STUDENT_NUMBER, "2023010101"), (IN_SCOPE, "2023010101"), (OUT_OF_SCOPE, "2023020101"),
                          ("202301010107", "2023010101")):
        handlers.on_student_registered(db, registered(number, klass=klass))
        if number != "202301010107":
            handlers.set_password(db, SYSTEM, number, PASSWORD)
    return db


@pytest.fixture
def app(amqp_uri: str, identity_db: Database, container_factory: Any) -> Iterator[Flask]:
    container = container_factory(IdentityService, {"AMQP_URI": amqp_uri, "IDENTITY_DATABASE_URL": identity_db.url})
    container.start()
    app = create_app({"TESTING": True, "SECRET_KEY": "identity-tests", "XUEJI_AMQP_URI": amqp_uri,
                      "XUEJI_RPC_TIMEOUT": 10.0, "XUEJI_CONFIGURE_LOGGING": False})
    yield app
    rpc_pool(app).close()


def api_client(app: Flask, username: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = client.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return client


def xhr(client: FlaskClient, method: str, url: str, **kwargs: Any) -> Any:
    return client.open(url, method=method, headers={"X-Requested-With": "XMLHttpRequest"}, **kwargs)


def web_form(client: FlaskClient, url: str, data: dict[str, str]) -> Any:
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return client.post(url, data={**data, "csrf_token": token.value})


def test_api_authorization_matrix(app: Flask) -> None:
    clients = {role: api_client(app, name) for role, (name, _, _) in ACTORS.items()}

    def target(actor: str, kind: str) -> str:
        return {"own": ACTORS[actor][0], "student_in_scope": IN_SCOPE, "student_out_of_scope": OUT_OF_SCOPE,
                "staff": STAFF, "unknown": UNKNOWN}[kind]

    def on_account(method: str, path: str, **kwargs: Any) -> Callable[[str, str], str]:
        return lambda actor, kind: http_outcome(
            xhr(clients[actor], method, f"/api/v1/accounts/{target(actor, kind)}{path}", **kwargs))

    targets = ("own", "student_in_scope", "student_out_of_scope", "staff", "unknown")
    without_own = targets[1:]  # ending one's own session or disabling oneself would end the run
    cases: list[tuple[str, tuple[str, ...], dict[str, set[str]], Callable[[str, str], str]]] = [
        ("GET /accounts/<u>", targets, {**{r: {"own"} for r in ROLES},
                                        "counselor": {"own", "student_in_scope"},
                                        "deputy_secretary": {"own", "student_in_scope"}, SA: EVERY_TARGET},
         on_account("GET", "")),
        ("GET /accounts/<u>/grants", targets, {**{r: {"own"} for r in ROLES}, "deputy_secretary": {"own", "staff"},
                                               SA: EVERY_TARGET}, on_account("GET", "/grants")),
        ("POST /accounts/<u>/password-reset", targets,
         {"counselor": {"student_in_scope"}, "deputy_secretary": {"student_in_scope"}, SA: {"staff"}},
         on_account("POST", "/password-reset")),
        ("POST /accounts/<u>/unlock", targets, {SA: EVERY_TARGET}, on_account("POST", "/unlock")),
        ("POST /accounts/<u>/enable", targets, {SA: EVERY_TARGET}, on_account("POST", "/enable")),
        ("PATCH /accounts/<u>", ("own", "staff", "unknown"), {SA: {"own", "staff"}},
         on_account("PATCH", "", json={"display_name": "改过的名字"})),
    ]
    for name, tgts, allowed, attempt in cases:
        Matrix(actors=ROLES, targets=tgts, allowed=allowed).check(attempt, name)

    def untargeted(method: str, url: str, **kwargs: Any) -> Callable[[str, str], str]:
        return lambda actor, _: http_outcome(xhr(clients[actor], method, url, **kwargs))

    counter = iter(range(10, 99))

    def new_grant(actor: str, kind: str) -> str:
        college = "01" if kind == "in_college" else "02"
        return http_outcome(xhr(clients[actor], "POST", "/api/v1/grants", json={
            "username": STAFF, "role": "counselor", "scope_kind": "classes",
            "scope_ids": [f"2023{college}01{next(counter)}"]}))

    def revoke(actor: str, kind: str) -> str:
        college = "01" if kind == "in_college" else "02"
        made = handlers_grant(college, next(counter))
        return http_outcome(xhr(clients[actor], "DELETE", f"/api/v1/grants/{made}"))

    for name, tgts, allowed, attempt in [
        ("GET /accounts", ("all",), {r: {"all"} for r in ("counselor", "deputy_secretary", SA)},
         untargeted("GET", "/api/v1/accounts")),
        ("GET /login-log", ("all",), {SA: {"all"}}, untargeted("GET", "/api/v1/login-log")),
        ("GET /accounts/import/template", ("all",), {SA: {"all"}},
         untargeted("GET", "/api/v1/accounts/import/template")),
        ("POST /accounts/import", ("all",), {SA: {"all"}}, lambda actor, _: http_outcome(xhr(
            clients[actor], "POST", "/api/v1/accounts/import",
            json={"content": staff_workbook(f"20{next(counter):05d}")}))),
        ("POST /accounts/initial-passwords", ("class_in_scope", "class_out_of_scope"),
         {r: {"class_in_scope"} for r in ("counselor", "deputy_secretary")}, lambda actor, kind: http_outcome(xhr(
             clients[actor], "POST", "/api/v1/accounts/initial-passwords",
             json={"class_code": "2023010101" if kind == "class_in_scope" else "2023020101"}))),
        ("POST /accounts", ("all",), {SA: {"all"}}, lambda actor, _: http_outcome(xhr(
            clients[actor], "POST", "/api/v1/accounts", json={
                "username": f"20090{next(counter)}", "display_name": "新老师", "role": "housing_centre",
                "scope_kind": "institution", "scope_ids": [], "password": "New-teacher-27"}))),
        ("GET /me/sessions", ("own",), {r: {"own"} for r in ROLES}, untargeted("GET", "/api/v1/me/sessions")),
        ("GET /me/logins", ("own",), {r: {"own"} for r in ROLES}, untargeted("GET", "/api/v1/me/logins")),
        ("POST /grants", ("in_college", "out_of_college"),
         {"deputy_secretary": {"in_college"}, SA: {"in_college", "out_of_college"}}, new_grant),
        ("DELETE /grants/<id>", ("in_college", "out_of_college"),
         {"deputy_secretary": {"in_college"}, SA: {"in_college", "out_of_college"}}, revoke),
        # last: these disable the targets and end their sessions
        ("POST /accounts/<u>/disable", without_own, {SA: EVERY_TARGET - {"own"}},
         on_account("POST", "/disable", json={"reason": "测试"})),
        ("DELETE /accounts/<u>/sessions", without_own, {SA: EVERY_TARGET - {"own"}},
         on_account("DELETE", "/sessions")),
    ]:
        Matrix(actors=ROLES, targets=tgts, allowed=allowed).check(attempt, name)


_GRANT_DB: list[Database] = []


def handlers_grant(college: str, n: int) -> int:
    from services.identity import grants

    made = grants.grant(_GRANT_DB[0], SYSTEM, STAFF, "counselor", "classes", [f"2023{college}01{n}"])
    return int(made["items"][-1]["id"])


@pytest.fixture(autouse=True)
def _grant_db(identity_db: Database) -> Iterator[None]:
    _GRANT_DB[:] = [identity_db]
    yield
    _GRANT_DB.clear()


def test_reset_forces_a_password_change_before_anything_else(app: Flask) -> None:
    counselor = api_client(app, "1000004")
    temporary = xhr(counselor, "POST", f"/api/v1/accounts/{IN_SCOPE}/password-reset").get_json()["temporary_password"]
    browser = app.test_client()
    browser.get("/login")
    response = web_form(browser, "/login", {"username": IN_SCOPE, "password": temporary, "next": ""})
    assert response.status_code == 302
    assert browser.get("/").headers["Location"].endswith("/password/change")
    assert browser.get("/api/v1/me/sessions").status_code == 403
    page = browser.get("/password/change").get_data(as_text=True)
    assert "请先修改密码后再使用系统" in page
    weak = web_form(browser, "/password/change", {"old_password": temporary, "new_password": "Password2027!",
                                                  "confirm": "Password2027!"})
    assert "密码过于常见" in weak.get_data(as_text=True)
    done = web_form(browser, "/password/change", {"old_password": temporary, "new_password": "Mine-2027-pass",
                                                  "confirm": "Mine-2027-pass"})
    assert done.headers["Location"].endswith("/me/account?done=password")
    me = browser.get("/me/account?done=password").get_data(as_text=True)
    assert "密码修改成功" in me and "当前会话" in me and "登录记录" in me


def test_admin_pages(app: Flask) -> None:
    browser = app.test_client()
    browser.get("/login")
    web_form(browser, "/login", {"username": "1000001", "password": PASSWORD, "next": ""})
    listing = browser.get("/accounts?q=1000099").get_data(as_text=True)
    assert "1000099" in listing and "停用" in listing and "授权" in listing
    reset = web_form(browser, "/accounts/1000099/reset", {}).get_data(as_text=True)
    assert "临时密码只显示这一次" in reset
    assert web_form(browser, "/accounts/1000099/disable", {"reason": "离职"}).status_code == 302
    assert "停用</span>" in browser.get("/accounts?q=1000099").get_data(as_text=True)
    grants_page = web_form(browser, "/accounts/1000099/grants", {"role": "counselor", "scope_ids": "2023020102"})
    assert "账号已停用，不能授权" in grants_page.get_data(as_text=True)
    assert "登录日志" in browser.get("/system/logins").get_data(as_text=True)
    created = web_form(browser, "/accounts/new", {"username": "2009001", "display_name": "新老师", "role": "counselor",
                                                  "scope_ids": "2023010103", "password": "New-teacher-27"})
    assert created.status_code == 302
    assert "修改姓名" in browser.get("/accounts/2009001/grants").get_data(as_text=True)
    assert web_form(browser, "/accounts/2009001/edit", {"display_name": "新来的陈老师"}).status_code == 302
    assert "新来的陈老师" in browser.get("/accounts?q=2009001").get_data(as_text=True)
    template = browser.get("/accounts/import/template.xlsx")
    assert template.status_code == 200 and template.data[:2] == b"PK"
    counselor = app.test_client()
    counselor.get("/login")
    web_form(counselor, "/login", {"username": "1000004", "password": PASSWORD, "next": ""})
    assert counselor.get("/system/logins").status_code == 403
    online = browser.get("/system/online").get_data(as_text=True)
    assert "1000004" in online and "强退" in online
    assert web_form(browser, "/accounts/1000004/logout", {"back": "online"}).status_code == 302
    assert counselor.get("/").status_code == 302  # its session ended: back to the login page
    web_form(counselor, "/login", {"username": "1000004", "password": PASSWORD, "next": ""})
    sheet = web_form(counselor, "/accounts/initial-passwords", {"class_code": "2023010101"})
    rows = list(load_workbook(io.BytesIO(sheet.data), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == ["202301010107"]


def test_a_deputy_secretary_finds_a_counselor_and_grants_a_class_of_their_college(app: Flask) -> None:
    deputy = app.test_client()
    deputy.get("/login")
    web_form(deputy, "/login", {"username": "1000002", "password": PASSWORD, "next": ""})
    listing = deputy.get("/accounts?q=1000004").get_data(as_text=True)
    assert "1000004" in listing and "授权" in listing and "重置密码" not in listing
    refused = web_form(deputy, "/accounts/1000004/grants", {"role": "counselor", "scope_ids": "2023020101"})
    assert "授权超出了您本人的角色或数据范围" in refused.get_data(as_text=True)
    page = web_form(deputy, "/accounts/1000004/grants", {"role": "counselor", "scope_ids": "2023010109"})
    assert "2023010109" in page.get_data(as_text=True)


def test_the_grant_form_offers_the_classes_of_the_deputys_college_from_the_org_tree(
        app: Flask, identity_db: Database) -> None:
    from services.identity.tests.test_org_units import MOVED_IN, MOVED_OUT, TREE

    handlers.on_org_units_changed(identity_db, TREE)
    deputy = app.test_client()
    deputy.get("/login")
    web_form(deputy, "/login", {"username": "1000002", "password": PASSWORD, "next": ""})
    form = deputy.get("/accounts/1000004/grants").get_data(as_text=True)
    assert '<select id="scope_ids" name="scope_ids" multiple' in form
    assert f'value="{MOVED_IN}"' in form and f'value="{MOVED_OUT}"' not in form and 'value="01"' not in form
    page = web_form(deputy, "/accounts/1000004/grants", {"role": "counselor", "scope_ids": MOVED_IN})
    assert f"班级：{MOVED_IN}" in page.get_data(as_text=True)
    registrar = app.test_client()
    registrar.get("/login")
    web_form(registrar, "/login", {"username": "1000001", "password": PASSWORD, "next": ""})
    form = registrar.get("/accounts/1000004/grants").get_data(as_text=True)
    assert 'value="01"' in form and f'value="{MOVED_OUT}"' in form


def test_staff_import_and_initial_passwords_through_the_api(app: Flask) -> None:
    from services.identity.tests.test_staff_import import workbook

    registrar = api_client(app, ACTORS[SA][0])
    template = xhr(registrar, "GET", "/api/v1/accounts/import/template").get_json()
    assert template["filename"].endswith(".xlsx")
    assert [c.value for c in load_workbook(io.BytesIO(base64.b64decode(template["content"])))
            .worksheets[0][1]][:3] == ["工号", "姓名", "角色"]
    bad = xhr(registrar, "POST", "/api/v1/accounts/import",
              json={"content": workbook(["2001001", "陈老师", "校长", "", None])}).get_json()
    assert bad["ok"] is False and bad["errors"][0]["header"] == "角色" and bad["annotated"]
    good = xhr(registrar, "POST", "/api/v1/accounts/import",
               json={"content": workbook(["2001001", "陈老师", "辅导员", "2023010101", "Chen-2027-pass"])})
    assert good.status_code == 200 and good.get_json()["created"] == 1
    refused = xhr(registrar, "POST", "/api/v1/accounts/import", json={"content": "not base64!"})
    assert refused.status_code == 400 and "base64" in refused.get_json()["error"]["message"]
    student = api_client(app, ACTORS["student"][0])
    assert xhr(student, "POST", "/api/v1/accounts/import", json={"content": workbook()}).status_code == 403

    counselor = api_client(app, ACTORS["counselor"][0])
    issued = xhr(counselor, "POST", "/api/v1/accounts/initial-passwords", json={"class_code": "2023010101"})
    assert issued.status_code == 200 and issued.headers["Cache-Control"] == "no-store"
    assert [i["student_number"] for i in issued.get_json()["items"]] == ["202301010107"]  # the one without one
    again = xhr(counselor, "POST", "/api/v1/accounts/initial-passwords", json={"class_code": "2023010101"})
    assert again.get_json()["items"] == []  # issued once
    assert xhr(student, "POST", "/api/v1/accounts/initial-passwords", json={}).status_code == 403
