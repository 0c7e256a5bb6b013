"""Plain units of the gateway: error mapping, pagination, settings."""

from __future__ import annotations

import base64

import pytest
from nameko.exceptions import MethodNotFound, RemoteError
from werkzeug.exceptions import MethodNotAllowed

from gateway import settings
from gateway.errors import describe, error_body
from gateway.presenters import Pagination, local_time, page_args, status_tag
from gateway.rpc import ServiceUnavailable, timeout_from_env
from gateway.spreadsheets import base64_body
from services.common.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated


@pytest.mark.parametrize(("exc", "status", "code", "message"), [
    (Unauthenticated("用户名或密码错误"), 401, "unauthenticated", "用户名或密码错误"),
    (Forbidden("无权"), 403, "forbidden", "无权"),
    (NotFound("没有"), 404, "not_found", "没有"),
    (Invalid("有误"), 400, "invalid", "有误"),
    (Conflict("已被修改"), 409, "conflict", "已被修改"),
    (Conflict(), 409, "conflict", "数据已被修改，请刷新后重试"),
    (ServiceUnavailable("roster"), 503, "service_unavailable", "学籍服务暂时不可用，请稍后重试"),
    (ServiceUnavailable("identity"), 503, "service_unavailable",
     "统一身份服务暂时不可用，请稍后重试"),
    (RemoteError("KeyError", "'x'"), 500, "internal_error", "系统内部错误，请稍后重试"),
    (MethodNotFound("nope"), 500, "internal_error", "系统内部错误，请稍后重试"),
    (MethodNotAllowed(), 405, "method_not_allowed", "不支持该请求方法"),
    (ValueError("boom"), 500, "internal_error", "系统内部错误，请稍后重试"),
])
def test_describe(exc: Exception, status: int, code: str, message: str) -> None:
    failure = describe(exc)
    assert (failure.status, failure.code, failure.message) == (status, code, message)


def test_error_body_names_the_unavailable_service_in_chinese() -> None:
    failure = describe(ServiceUnavailable("housing"))
    assert failure.service == "housing"
    assert error_body(failure) == {"error": {
        "code": "service_unavailable", "message": "宿舍服务暂时不可用，请稍后重试"}}


def test_pagination_window() -> None:
    assert Pagination(1, 10, 0).pages == 1
    assert Pagination(1, 10, 25).pages == 3
    assert Pagination(1, 10, 25).window() == [1, 2, 3]
    assert Pagination(10, 10, 200).window() == [1, None, 8, 9, 10, 11, 12, None, 20]
    assert not Pagination(1, 10, 5).has_next and not Pagination(1, 10, 5).has_prev


@pytest.mark.parametrize(("page", "per_page", "expected"), [
    (None, None, (1, 10)), ("3", "20", (3, 20)), ("0", "50", (1, 50)),
    ("x", "7", (1, 10)), ("-2", "abc", (1, 10)),
])
def test_page_args(page: str | None, per_page: str | None, expected: tuple[int, int]) -> None:
    assert page_args(page, per_page) == expected


def test_status_tags() -> None:
    assert status_tag("enrolled") == "success"
    assert status_tag("expelled") == "danger"
    assert status_tag("something-new") == "info"


def test_secret_key_is_required_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XUEJI_SECRET_KEY", raising=False)
    monkeypatch.setenv("XUEJI_ENV", "production")
    with pytest.raises(RuntimeError, match="XUEJI_SECRET_KEY"):
        settings.load()
    monkeypatch.setenv("XUEJI_SECRET_KEY", "s3cret")
    config = settings.load()
    assert config["SECRET_KEY"] == "s3cret" and config["SESSION_COOKIE_SECURE"] is True


def test_development_generates_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XUEJI_SECRET_KEY", raising=False)
    monkeypatch.delenv("XUEJI_ENV", raising=False)
    first, second = settings.load(), settings.load()
    assert first["XUEJI_SECRET_GENERATED"] and len(first["SECRET_KEY"]) >= 32
    assert first["SECRET_KEY"] != second["SECRET_KEY"]
    assert first["SESSION_COOKIE_SECURE"] is False


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XUEJI_AMQP_URI", "amqp://u:p@broker:5672/xueji")
    monkeypatch.setenv("XUEJI_RPC_TIMEOUT", "2.5")
    config = settings.load()
    assert config["XUEJI_AMQP_URI"] == "amqp://u:p@broker:5672/xueji"
    assert config["XUEJI_RPC_TIMEOUT"] == 2.5
    assert settings.load({"XUEJI_RPC_TIMEOUT": 9})["XUEJI_RPC_TIMEOUT"] == 9


@pytest.mark.parametrize("raw", ["zero", "0", "-1"])
def test_bad_rpc_timeout_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("XUEJI_RPC_TIMEOUT", raw)
    with pytest.raises(ValueError, match="XUEJI_RPC_TIMEOUT"):
        timeout_from_env()


def test_times_are_shown_in_beijing_time_as_users_expect() -> None:
    assert local_time("2026-11-24T14:57:30.532757+00:00") == "2026-11-24 22:57:30"
    assert local_time("2027-06-28T10:15:00+08:00") == "2027-06-28 10:15:00"
    assert local_time("2026-12-31T16:00:00") == "2027-01-01 00:00:00"  # naive = UTC
    assert local_time(None) == "" and local_time("not a time") == "not a time"


def test_error_body_names_the_input_the_service_named() -> None:
    named = error_body(describe(Invalid("非常规时段转学须填写原因", "out_of_term_reason")))
    assert named == {"error": {"code": "invalid", "message": "非常规时段转学须填写原因", "field": "out_of_term_reason"}}
    assert "field" not in error_body(describe(Invalid("学号格式不正确")))["error"]


def test_a_base64_body_is_held_to_the_size_of_the_same_upload_as_a_file() -> None:
    limit = 1024 * 1024
    exactly = base64.b64encode(b"\0" * limit).decode()
    assert base64_body(exactly, 1, not_base64="x", too_big="太大") == exactly
    for over in (limit + 1, 3 * limit):  # same base64 length as the limit's, and far longer (never decoded)
        with pytest.raises(Invalid, match="太大"):
            base64_body(base64.b64encode(b"\0" * over).decode(), 1, not_base64="x", too_big="太大")
    with pytest.raises(Invalid, match="不是 base64"):
        base64_body(None, 1, not_base64="不是 base64", too_big="太大")
    with pytest.raises(Invalid, match="不是有效的 base64"):
        base64_body("not base64!", 1, not_base64="x", too_big="太大")
