"""`create_app()`: the gateway's Flask application."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from flask import Flask, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from gateway import (
    accounts_api,
    accounts_web,
    aid_api,
    aid_web,
    api,
    auth,
    dashboard_web,
    housing_api,
    housing_web,
    menu,
    openapi,
    ops,
    org_api,
    org_web,
    presenters,
    print_web,
    ratelimit,
    roster_api,
    roster_web,
    security,
    settings,
    status_api,
    status_web,
    transfer_api,
    transfer_web,
    web,
)
from gateway.errors import Failure, describe, error_body
from gateway.rpc import RpcPool, ServiceUnavailable
from services.common.caller import Caller
from services.common.logs import bind_correlation_id, clear_correlation_id, configure_logging

log = logging.getLogger("gateway")

# A caller-supplied request id is echoed and logged, so it must be short and plain.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

ERROR_TITLES = {
    400: "请求有误",
    403: "无权访问",
    404: "页面不存在",
    405: "请求方法不支持",
    409: "数据冲突",
    413: "上传内容过大",
    429: "请求过于频繁",
    500: "系统错误",
    503: "服务暂时不可用",
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The gateway app. `config` overrides the environment (see `gateway.settings`)."""
    app = Flask(__name__)
    app.config.update(settings.load(config))
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.jinja_env.filters["local_time"] = presenters.local_time
    if app.config["XUEJI_CONFIGURE_LOGGING"]:
        configure_logging("gateway")
    if app.config.get("XUEJI_SECRET_GENERATED"):
        log.warning("XUEJI_SECRET_KEY is not set: using a random key, sessions end on restart")
    if app.config["XUEJI_PROXY_COUNT"] > 0:
        count = app.config["XUEJI_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]

    app.extensions[auth.RPC_EXTENSION] = RpcPool(
        app.config["XUEJI_AMQP_URI"], timeout=float(app.config["XUEJI_RPC_TIMEOUT"])
    )

    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
    security.init_app(app)
    ratelimit.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(accounts_web.bp)
    app.register_blueprint(accounts_api.bp)
    app.register_blueprint(housing_web.bp)
    app.register_blueprint(housing_api.bp)
    app.register_blueprint(roster_web.bp)
    app.register_blueprint(roster_api.bp)
    app.register_blueprint(org_web.bp)
    app.register_blueprint(org_api.bp)
    app.register_blueprint(status_web.bp)
    app.register_blueprint(status_api.bp)
    app.register_blueprint(aid_web.bp)
    app.register_blueprint(aid_api.bp)
    app.register_blueprint(transfer_web.bp)
    app.register_blueprint(transfer_api.bp)
    app.register_blueprint(print_web.bp)
    app.register_blueprint(dashboard_web.bp)
    app.register_blueprint(dashboard_web.api_bp)
    app.register_blueprint(openapi.bp)
    _register_error_handlers(app)
    return app


def rpc_pool(app: Flask) -> RpcPool:
    """The app's RPC pool (close it when discarding an app, e.g. in tests)."""
    return app.extensions[auth.RPC_EXTENSION]


# -- request lifecycle -----------------------------------------------------------------------


def _start_request() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
    bind_correlation_id(g.request_id)


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    if request.endpoint != "static":
        caller: Caller | None = g.get("caller")
        log.info("request", extra={"fields": {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter()))
                                 * 1000, 1),
            "user": caller.username if caller else None,
        }})
    return response


def _end_request(_exc: BaseException | None) -> None:
    clear_correlation_id()


# -- errors ------------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _handle(exc: Exception) -> Response | tuple[Any, int]:
    failure = describe(exc)
    if isinstance(exc, ServiceUnavailable):
        log.warning("service unavailable", extra={"fields": {
            "service": exc.service, "reason": exc.reason}})
    elif failure.status >= 500:
        log.error("request failed", exc_info=exc)
    if _wants_json():
        return jsonify(error_body(failure)), failure.status
    if failure.status == 401:
        target = request.full_path if request.method == "GET" else request.path
        return redirect(url_for("web.login_form") + "?next=" + quote(target.rstrip("?")))
    return _error_page(failure), failure.status


def _error_page(failure: Failure) -> str:
    caller = g.get("caller")
    return render_template(
        "error.html",
        failure=failure,
        title=ERROR_TITLES.get(failure.status, "出错了"),
        caller=caller,
        role_label=auth.role_label(caller.role) if caller else "",
        menu_groups=menu.groups_for(caller.role) if caller else [],
        crumbs=[(ERROR_TITLES.get(failure.status, "出错了"), None)],
    )


def _register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, _handle)
    app.register_error_handler(Exception, _handle)
