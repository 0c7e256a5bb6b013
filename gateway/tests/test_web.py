"""The Chinese web UI through the Flask test client, against stand-in services."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from flask import Flask
from flask.testing import FlaskClient

from gateway.app import rpc_pool
from gateway.tests import cluster
from gateway.tests.helpers import web_login


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)


# What a counselor works with; nothing of housing's, the IT centre's or the aid centre's own.
COUNSELOR_MENU = ["首页", "数据看板", "学生名单", "变更审核", "学籍统计", "照片导入", "异动办理", "批量异动",
                  "缺勤登记", "疑似辍学",
                  "待毕业名单", "校内转专业", "住宿查询", "资助审核", "困难认定", "困难认定导入", "账号管理",
                  "学生初始密码", "个人中心"]


def menu_labels(html: str) -> list[str]:
    return re.findall(r'class="menu-item[^"]*"\s+href="[^"]*">([^<]+)</a>', html)


# -- login -------------------------------------------------------------------------------------


def test_pages_need_login_and_come_back_after_it(client: FlaskClient) -> None:
    response = client.get("/students?q=张")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    page = text_of(client.get(response.headers["Location"]))
    assert "学籍管理平台" in page and 'name="password"' in page
    next_field = re.search(r'name="next" value="([^"]*)"', page)
    assert next_field is not None and next_field.group(1) == "/students?q=张"

    response = web_login(client, "2001001", next_url=next_field.group(1))
    assert response.status_code == 302
    assert unquote(response.headers["Location"]) == "/students?q=张"


def test_login_never_redirects_off_site(client: FlaskClient) -> None:
    for target in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        response = web_login(client, "2001001", next_url=target)
        assert response.headers["Location"] == "/", target


def test_wrong_password_shows_one_message(client: FlaskClient) -> None:
    for username, password in (("2001001", "wrong"), ("nobody", cluster.PASSWORD)):
        page = text_of(web_login(client, username, password))
        assert "用户名或密码错误" in page
        assert client.get_cookie("xueji_session") is None


def test_locked_account_shows_identity_lock_message(client: FlaskClient) -> None:
    page = text_of(web_login(client, "2001009"))
    assert "账号已锁定，请 15 分钟后再试" in page


def test_initial_password_prompts_for_a_change(client: FlaskClient) -> None:
    response = web_login(client, "202301010101")
    assert response.headers["Location"] == "/?notice=initial_password"
    page = text_of(client.get(response.headers["Location"]))
    assert "您正在使用初始密码" in page


def test_login_form_without_csrf_token_is_refused(client: FlaskClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "2001001",
                                           "password": cluster.PASSWORD})
    assert response.status_code == 403
    assert "请求校验失败，请刷新页面后重试" in text_of(response)
    assert cluster.SESSIONS == {}


def test_logout_needs_the_token_and_ends_the_session(client: FlaskClient) -> None:
    web_login(client, "2001001")
    assert client.post("/logout").status_code == 403
    assert len(cluster.SESSIONS) == 1

    home = text_of(client.get("/"))
    assert 'data-confirm="确定注销并退出系统吗？"' in home and "退出登录" in home
    token = re.search(r'name="csrf_token" value="([^"]+)"', home)
    assert token is not None
    response = client.post("/logout", data={"csrf_token": token.group(1)})
    assert response.status_code == 302
    assert cluster.SESSIONS == {}
    assert "您已退出登录" in text_of(client.get(response.headers["Location"]))
    assert client.get("/").status_code == 302


# -- frame and menu ----------------------------------------------------------------------------


def test_menu_shows_only_what_the_role_may_use(client: FlaskClient) -> None:
    web_login(client, "2001001")
    page = text_of(client.get("/"))
    assert menu_labels(page) == COUNSELOR_MENU
    assert "2001001" in page and "辅导员" in page
    assert client.get("/system/health").status_code == 403

    web_login(client, "2001004")
    assert menu_labels(text_of(client.get("/"))) == [
        "首页", "学生名单", "学生导入", "对端单位与密钥", "住宿查询", "个人中心", "服务状态", "消息队列",
        "接口文档"]

    web_login(client, "202301010102")
    page = text_of(client.get("/"))
    assert menu_labels(page) == ["首页", "我的学籍", "信息变更", "我的住宿", "资助申请", "个人中心"]
    response = client.get("/students")
    assert response.status_code == 403
    assert "您没有权限访问该页面" in text_of(response)
    assert client.get("/me").headers["Location"] == "/students/202301010102"


# -- student list ------------------------------------------------------------------------------


def test_student_list_with_search_tags_and_pagination(client: FlaskClient) -> None:
    web_login(client, "2001001")
    page = text_of(client.get("/students?per_page=10&page=3"))
    for heading in ("学号", "姓名", "学院", "班级", "学籍状态"):
        assert f"<th>{heading}</th>" in page
    assert "共 25 条" in page
    assert page.count("<tr>") == 1 + 5  # header + the last 5 of 25
    assert '<span class="page current" aria-current="page">3</span>' in page
    for size in (10, 20, 30, 50):
        assert f'<option value="{size}"' in page
    assert "搜索" in page and "重置" in page

    page = text_of(client.get("/students?q=李四"))
    assert "李四" in page and "计算机学院" in page and "计算机2301班" in page
    assert '<span class="tag tag-warning">休学</span>' in page
    assert "共 1 条" in page
    assert "张三" not in page


def test_student_list_falls_back_on_nonsense_paging(client: FlaskClient) -> None:
    web_login(client, "2001001")
    response = client.get("/students?page=abc&per_page=1000")
    assert response.status_code == 200
    calls = [m for _, m, _ in cluster.SEEN if m == "search_students"]
    assert calls == ["search_students"]
    assert "共 25 条" in text_of(response)
    assert '<option value="10" selected>' in text_of(response)


def test_roster_down_shows_a_chinese_503_page(
    fresh_amqp_uri: str, start_services: Callable[..., dict[str, Any]],
    make_app: Callable[..., Flask]
) -> None:
    start_services(fresh_amqp_uri, "identity")
    client = make_app(fresh_amqp_uri).test_client()
    web_login(client, "2001001")
    response = client.get("/students")
    assert response.status_code == 503
    page = text_of(response)
    assert "学籍服务暂时不可用，请稍后重试" in page
    assert menu_labels(page) == COUNSELOR_MENU  # still inside the frame


# -- student page ------------------------------------------------------------------------------


def test_student_page_shows_record_bed_and_account(app: Flask, client: FlaskClient) -> None:
    web_login(client, "2001001")
    response = client.get("/students/202301010101", headers={"X-Request-ID": "req-page-1"})
    assert response.status_code == 200
    page = text_of(response)
    assert "张三" in page and '<span class="tag tag-success">在读</span>' in page
    assert "110101********1234" in page
    assert "东区3号楼-101-2" in page and "<dt>床号</dt><dd>2</dd>" in page
    assert "初始密码未修改" in page
    assert "暂时不可用" not in page
    # The three services were asked at once, each with the caller's context.
    calls = sorted((s, m) for s, m, c in cluster.SEEN
                   if c and c["correlation_id"] == "req-page-1")
    assert calls == [("housing", "occupancy"), ("identity", "get_account"),
                     ("roster", "get_student")]
    created = rpc_pool(app).created
    client.get("/students/202301010101")
    assert rpc_pool(app).created == created  # the second visit reuses the proxies


def test_student_page_outside_scope_and_unknown(client: FlaskClient) -> None:
    web_login(client, "2001001")
    response = client.get("/students/202302010101")
    assert response.status_code == 403
    assert "学生 202302010101 不在您的数据权限范围内" in text_of(response)
    response = client.get("/students/209901010101")
    assert response.status_code == 404
    assert "未找到学号为 209901010101 的学生" in text_of(response)


def test_student_page_when_housing_is_down(
    fresh_amqp_uri: str, start_services: Callable[..., dict[str, Any]],
    make_app: Callable[..., Flask]
) -> None:
    start_services(fresh_amqp_uri, "identity", "roster")
    client = make_app(fresh_amqp_uri).test_client()
    web_login(client, "2001001")
    response = client.get("/students/202301010101")
    assert response.status_code == 200
    page = text_of(response)
    assert "宿舍服务暂时不可用，请稍后重试，宿舍床位信息暂时无法显示。" in page
    assert "张三" in page and "计算机2301班" in page
    assert "初始密码未修改" in page


def test_student_page_when_housing_hangs(
    fresh_amqp_uri: str, start_services: Callable[..., dict[str, Any]],
    make_app: Callable[..., Flask]
) -> None:
    containers = start_services(fresh_amqp_uri, "identity", "roster", "housing")
    client = make_app(fresh_amqp_uri, XUEJI_RPC_TIMEOUT=1.0).test_client()
    web_login(client, "2001001")
    containers["housing"].stop()
    started = time.monotonic()
    response = client.get("/students/202301010101")
    assert time.monotonic() - started < 4.0
    page = text_of(response)
    assert response.status_code == 200
    assert "宿舍服务暂时不可用" in page and "张三" in page


def test_student_page_when_roster_is_down_still_shows_the_rest(
    fresh_amqp_uri: str, start_services: Callable[..., dict[str, Any]],
    make_app: Callable[..., Flask]
) -> None:
    start_services(fresh_amqp_uri, "identity", "housing")
    client = make_app(fresh_amqp_uri).test_client()
    web_login(client, "2001001")
    page = text_of(client.get("/students/202301010101"))
    assert "学籍服务暂时不可用，请稍后重试，学籍信息暂时无法显示。" in page
    assert "东区3号楼-101-2" in page


def test_student_sees_own_page_only(client: FlaskClient) -> None:
    web_login(client, "202301010101")
    response = client.get("/students/202301010101")
    assert response.status_code == 200
    assert "110101200501011234" in text_of(response)  # own ID number unmasked
    assert client.get("/students/202301010102").status_code == 403


def test_unexpected_failure_and_unknown_page(client: FlaskClient) -> None:
    web_login(client, "2001002")
    response = client.get(f"/students/{cluster.BROKEN_RECORD}")
    assert response.status_code == 200
    assert "学籍服务返回错误，学籍信息暂时无法显示。" in text_of(response)
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "页面不存在" in text_of(response)


# -- status page -------------------------------------------------------------------------------


def test_service_status_page(client: FlaskClient) -> None:
    web_login(client, "2001004")
    page = text_of(client.get("/system/health"))
    assert "全部正常" in page
    for label in ("统一身份（identity）", "学籍（roster）", "宿舍（housing）"):
        assert label in page
