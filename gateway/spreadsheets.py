"""Workbooks in and out of the web pages: one download response, one upload check, one store of
files kept for their operator (an upload between preview and apply, an annotated workbook to
download), and the one preview-then-apply step of every sheet page.

Services take and return workbooks as base64 strings (they cross RPC as JSON).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Response, request

from services.common.errors import Invalid, NotFound

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_response(data: bytes | str, filename: str) -> Response:
    """A workbook download; `data` as bytes or as the base64 a service returned."""
    raw = base64.b64decode(data) if isinstance(data, str) else data
    response = Response(raw, mimetype=XLSX)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    return response


def base64_body(content: Any, max_mb: int, *, not_base64: str, too_big: str) -> str:
    """An API body's file as base64 `content`: checked to be base64 of at most `max_mb` (what the same
    upload as a multipart file may weigh); the service checks the file itself."""
    if not isinstance(content, str):
        raise Invalid(not_base64)
    limit = max_mb * 1024 * 1024
    if len(content) > -(-limit // 3) * 4:  # longer than base64 of `limit` bytes: not decoded at all
        raise Invalid(too_big)
    try:
        size = len(base64.b64decode(content, validate=True))
    except ValueError:
        raise Invalid("content 不是有效的 base64") from None
    if size > limit:
        raise Invalid(too_big)
    return content


def base64_workbook(content: Any, max_mb: int) -> str:
    return base64_body(content, max_mb, not_base64="content 必须是 base64 编码的 .xlsx 文件",
                       too_big=f"文件不能超过 {max_mb} MB")


def api_workbook(max_mb: int, body: dict[str, Any]) -> str:
    """An API request's workbook: a multipart `file`, or `content` (base64) in the JSON body."""
    return uploaded_xlsx_b64(max_mb) if request.files else base64_workbook(body.get("content"), max_mb)


def uploaded_xlsx_b64(max_mb: int, field: str = "file") -> str:
    """The uploaded .xlsx as base64, refused with a Chinese message if missing, wrong or too big."""
    return uploaded_b64(field, ".xlsx", max_mb, missing="请选择要上传的 Excel 文件",
                        wrong_type="只支持 .xlsx 格式的 Excel 文件", too_big=f"文件不能超过 {max_mb} MB")


def uploaded_b64(field: str, suffix: str, max_mb: int, *, missing: str, wrong_type: str, too_big: str) -> str:
    """An uploaded file of one type as base64; each refusal in the page's own words. Reads at most one
    byte past the limit, so an oversized upload is never held whole."""
    upload = request.files.get(field)
    if upload is None or not upload.filename:
        raise Invalid(missing)
    if not upload.filename.lower().endswith(suffix):
        raise Invalid(wrong_type)
    limit = max_mb * 1024 * 1024
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise Invalid(too_big)
    return base64.b64encode(data).decode()


# Kept files: one gateway process (`gunicorn -w 1`); a restart only means uploading again.
KEEP_SECONDS = 3600.0
_kept: dict[str, tuple[float, str, bytes]] = {}
_kept_lock = threading.Lock()


def keep(username: str, data: bytes | str) -> str:
    """Keep a workbook (bytes or base64) for `username` for an hour; the token names it in forms and links."""
    raw = base64.b64decode(data) if isinstance(data, str) else data
    token = secrets.token_urlsafe(16)
    now = time.monotonic()
    with _kept_lock:
        for key in [k for k, (expires, _, _) in _kept.items() if expires < now]:
            del _kept[key]
        _kept[token] = (now + KEEP_SECONDS, username, raw)
    return token


def kept(token: str, username: str) -> bytes:
    """A workbook kept for this operator; another operator's token or an old one is "expired"."""
    with _kept_lock:
        found = _kept.get(token)
    if found is None or found[1] != username or found[0] < time.monotonic():
        raise NotFound("文件已过期，请重新上传")
    return found[2]


def forget(token: str) -> None:
    with _kept_lock:
        _kept.pop(token, None)


@dataclass
class SheetStep:
    """What one POST of a preview-then-apply page produced, for its template."""

    preview: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    upload_token: str | None = None  # the clean upload, kept for 确认执行
    annotated_token: str | None = None  # the workbook back with its errors marked


def preview_or_apply(username: str, max_mb: int, preview: Callable[[str], dict[str, Any]],
                     apply: Callable[[str], dict[str, Any]]) -> SheetStep:
    """`action=apply` applies the kept upload named by `token` (then forgets it: a double click cannot apply
    the same file twice); otherwise the uploaded file is previewed and kept while the preview is clean."""
    step = SheetStep()
    if request.form.get("action") == "apply":
        step.upload_token = request.form.get("token", "")
        step.result = outcome = apply(base64.b64encode(kept(step.upload_token, username)).decode())
        if outcome.get("ok"):
            forget(step.upload_token)
            step.upload_token = None
    else:
        content = uploaded_xlsx_b64(max_mb)
        step.preview = outcome = preview(content)
        if outcome.get("ok"):
            step.upload_token = keep(username, content)
    if outcome.get("annotated"):
        step.annotated_token = keep(username, outcome["annotated"])
    return step
