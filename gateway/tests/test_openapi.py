"""The OpenAPI document (valid, complete against the url_map), the docs page, the security headers
and the login rate limit. No service answers here: none of these paths calls one."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from gateway import openapi
from gateway.ratelimit import SlidingWindow
from gateway.tests import cluster


@pytest.fixture
def bare_app(amqp_uri: str, make_app: Callable[..., Flask]) -> Flask:
    return make_app(amqp_uri)


def test_the_document_is_valid_openapi_3_1(bare_app: Flask) -> None:
    spec = bare_app.test_client().get("/api/v1/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_every_api_route_is_documented_and_nothing_else(bare_app: Flask) -> None:
    undocumented, unknown = openapi.coverage(bare_app)
    assert not undocumented, f"routes without documentation in gateway/openapi/*.yaml: {sorted(undocumented)}"
    assert not unknown, f"documented but no such route: {sorted(unknown)}"
    assert len(openapi.documented(openapi.document(bare_app))) >= 128


def test_coverage_notices_a_new_route(amqp_uri: str, make_app: Callable[..., Flask]) -> None:
    app = make_app(amqp_uri)
    app.add_url_rule("/api/v1/brand-new/<int:thing_id>", "brand_new", lambda thing_id: "", methods=["POST"])
    undocumented, _ = openapi.coverage(app)
    assert undocumented == {("/api/v1/brand-new/{thing_id}", "post")}


def test_operations_carry_tags_security_and_the_error_body(bare_app: Flask) -> None:
    spec = openapi.document(bare_app)
    tags = {tag["name"] for tag in spec["tags"]}
    ids = set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op["summary"] and set(op["tags"]) <= tags, where
            ids.add(op["operationId"])
            public = op.get("security") == []
            if not public:
                assert op["responses"]["401"] == {"$ref": "#/components/responses/E401"}, where
                assert "403" in op["responses"] and "503" in op["responses"], where
            if method in ("post", "put", "patch", "delete") and not public:
                assert op["security"] == [{"session": [], "csrf": []}], where
            for name in re.findall(r"{(\w+)}", path):
                assert any(p["name"] == name and p["in"] == "path" for p in op["parameters"]), where
            assert "500" not in op["responses"], where  # a 500 is always a defect
    assert len(ids) == sum(len(item) for item in spec["paths"].values())  # unique operation ids
    errors = spec["components"]["responses"]
    assert all(r["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
               for r in errors.values())
    assert "Retry-After" in errors["E429"]["headers"]
    login = spec["paths"]["/api/v1/session"]["post"]
    assert login["security"] == [] and "429" in login["responses"]
    int_param = spec["paths"]["/api/v1/grants/{grant_id}"]["delete"]["parameters"][0]
    assert int_param["schema"]["type"] == "integer"


def test_docs_page_loads_local_swagger_ui_under_the_strict_csp(bare_app: Flask) -> None:
    response = bare_app.test_client().get("/api/v1/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    sources = re.findall(r'<script src="([^"]+)"', page)
    assert sources == ["/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/api_docs.js"]
    assert "<script>" not in page and "http" not in page.replace("http-equiv", "")  # nothing inline or remote
    assert 'data-spec-url="/api/v1/openapi.json"' in page
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert bare_app.test_client().get("/static/api_docs.js").status_code == 200


# -- security headers ----------------------------------------------------------------------------


@pytest.mark.parametrize("secure", [True, False])
def test_security_headers(amqp_uri: str, make_app: Callable[..., Flask], secure: bool) -> None:
    app = make_app(amqp_uri, SESSION_COOKIE_SECURE=secure)
    for path in ("/api/v1/openapi.json", "/api/v1/docs", "/login", "/api/v1/nothing"):
        headers = app.test_client().get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert "object-src 'none'" in headers["Content-Security-Policy"], path
        if secure:
            assert headers["Strict-Transport-Security"].startswith("max-age="), path
        else:
            assert "Strict-Transport-Security" not in headers, path


# -- login rate limit ------------------------------------------------------------------------------


def test_sliding_window_counts_per_key_and_forgets_old_events() -> None:
    now = [1000.0]
    window = SlidingWindow(3, 60.0, clock=lambda: now[0])
    for _ in range(3):
        assert window.wait("a") == 0.0
        window.record("a")
    now[0] += 20
    assert window.wait("a") == pytest.approx(40.0)  # the first failure leaves the window in 40 s
    assert window.wait("b") == 0.0  # another client is not affected
    now[0] += 40
    assert window.wait("a") == 0.0  # all three left the window


PASSWORD_OF_STAND_INS = cluster.PASSWORD


def _login(client: Any, password: str = "wrong-password", **kwargs: Any) -> Any:
    return client.post("/api/v1/session", json={"username": "2001001", "password": password}, **kwargs)


def test_api_login_is_limited_per_ip_after_failures(app: Flask) -> None:
    client = app.test_client()
    # Successful logins do not count (a dormitory behind one NAT address), malformed requests neither.
    assert [_login(client, PASSWORD_OF_STAND_INS).status_code for _ in range(12)] == [200] * 12
    assert [client.post("/api/v1/session", json={}).status_code for _ in range(12)] == [400] * 12
    assert [_login(client).status_code for _ in range(10)] == [401] * 10
    refused = _login(client, PASSWORD_OF_STAND_INS)  # even the right password now waits
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert "登录尝试过于频繁" in refused.get_json()["error"]["message"]
    # The web form shares the counter and answers with the login page.
    page = client.post("/login", data={"username": "2001001", "password": PASSWORD_OF_STAND_INS})
    assert page.status_code == 429 and "登录尝试过于频繁" in page.get_data(as_text=True)
    assert "Retry-After" in page.headers
    # Another address is not limited; other paths are not limited.
    assert _login(client, PASSWORD_OF_STAND_INS, environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_web_login_failures_count(amqp_uri: str, cluster_up: Any, make_app: Callable[..., Flask]) -> None:
    client = make_app(amqp_uri, XUEJI_LOGIN_ATTEMPTS=3).test_client()
    client.get("/login")
    token = client.get_cookie("xueji_csrf")
    assert token is not None

    def attempt(password: str) -> int:
        return client.post("/login", data={"username": "2001001", "password": password,
                                           "csrf_token": token.value}).status_code

    assert [attempt("wrong-password") for _ in range(3)] == [200, 200, 200]  # the form again, with the error
    assert attempt(PASSWORD_OF_STAND_INS) == 429


def test_behind_a_proxy_the_client_address_is_limited(amqp_uri: str, cluster_up: Any,
                                                      make_app: Callable[..., Flask]) -> None:
    client = make_app(amqp_uri, XUEJI_LOGIN_ATTEMPTS=2, XUEJI_PROXY_COUNT=1).test_client()

    def attempt(client_ip: str) -> int:
        return _login(client, headers={"X-Forwarded-For": client_ip}).status_code

    assert [attempt("203.0.113.5") for _ in range(3)] == [401, 401, 429]
    # Same proxy (same REMOTE_ADDR), another client behind it: its own count.
    assert attempt("203.0.113.6") == 401
