"""How failures look to users: HTTP status, error code and a Chinese message."""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.exceptions import HTTPException

from gateway.rpc import ServiceUnavailable
from services.common.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Unauthenticated,
    XuejiError,
)

STATUS_OF: dict[type[XuejiError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Invalid: 400,
    Conflict: 409,
}

# Default messages when an error carries none of its own.
MESSAGES: dict[int, str] = {
    400: "请求参数有误",
    401: "请先登录",
    403: "您没有权限执行此操作",
    404: "您访问的内容不存在",
    405: "不支持该请求方法",
    409: "数据已被修改，请刷新后重试",
    413: "上传的内容过大",
    429: "请求过于频繁，请稍后再试",
    500: "系统内部错误，请稍后重试",
    503: "服务暂时不可用，请稍后重试",
}

CODES: dict[int, str] = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class CsrfFailed(Forbidden):
    """A cookie-authenticated write without proof that our own page sent it."""

    code = "csrf_failed"

    def __init__(self, message: str = "请求校验失败，请刷新页面后重试") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Failure:
    status: int
    code: str
    message: str
    service: str | None = None
    field: str | None = None  # the input the service's error names (`Invalid(message, "field")`)


def describe(exc: BaseException) -> Failure:
    """Status, code and Chinese message of any error reaching a view."""
    if isinstance(exc, ServiceUnavailable):
        return Failure(503, exc.code, exc.message, exc.service)
    if isinstance(exc, XuejiError):
        status = next((s for t, s in STATUS_OF.items() if isinstance(exc, t)), 500)
        text = str(exc.args[0]) if exc.args and exc.args[0] else MESSAGES[status]
        return Failure(status, exc.code, text, field=exc.field)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return Failure(status, CODES.get(status, "error"), MESSAGES.get(status, MESSAGES[500]))
    # RemoteError (a service's unexpected failure), nameko's BadRequest family (the
    # gateway called a method wrongly) and anything else: the user can only retry.
    return Failure(500, "internal_error", MESSAGES[500])


def error_body(failure: Failure) -> dict[str, dict[str, str]]:
    error = {"code": failure.code, "message": failure.message}
    if failure.field:  # lets an API client put the message beside the right input
        error["field"] = failure.field
    return {"error": error}
