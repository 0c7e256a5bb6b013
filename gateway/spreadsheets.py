"""Workbooks in and out of the web pages: one download response, one upload check.

Services take and return workbooks as base64 strings (they cross RPC as JSON).
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from flask import Response, request

from services.common.errors import Invalid

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_response(data: bytes | str, filename: str) -> Response:
    """A workbook download; `data` as bytes or as the base64 a service returned."""
    raw = base64.b64decode(data) if isinstance(data, str) else data
    response = Response(raw, mimetype=XLSX)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    return response


def uploaded_xlsx_b64(max_mb: int, field: str = "file") -> str:
    """The uploaded .xlsx as base64, refused with a Chinese message if missing, wrong or too big."""
    upload = request.files.get(field)
    if upload is None or not upload.filename:
        raise Invalid("请选择要上传的 Excel 文件")
    if not upload.filename.lower().endswith(".xlsx"):
        raise Invalid("只支持 .xlsx 格式的 Excel 文件")
    limit = max_mb * 1024 * 1024
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise Invalid(f"文件不能超过 {max_mb} MB")
    return base64.b64encode(data).decode()
