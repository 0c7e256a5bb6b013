"""HTML → PDF for the print views (在校证明, 学籍卡, 初始密码分发单) with WeasyPrint.

WeasyPrint lays pages out with Pango and finds fonts through fontconfig: Debian's libpango-1.0-0,
libpangoft2-1.0-0 and fonts-noto-cjk come from `deploy/ensure-pdf.sh`. The PDF embeds a subset of every font
it uses, so it prints the same on a machine without Chinese fonts. WeasyPrint is imported on first use: a
gateway without Pango still serves every other page, and only the print views answer 503 with the reason.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from typing import Any
from urllib.parse import quote

from flask import Response

from gateway.rpc import ServiceUnavailable

log = logging.getLogger(__name__)

# The families the print templates name (print_base.html); all three come with fonts-noto-cjk.
FONTS = ("Noto Serif CJK SC", "Noto Sans CJK SC", "Noto Sans Mono CJK SC")
# WeasyPrint promises no thread safety and Pango/fontconfig keep process-wide state, while gunicorn runs
# 8 threads: a print page takes well under a second, so rendering one at a time costs little.
_lock = threading.Lock()


class PdfUnavailable(ServiceUnavailable):
    """Pango, WeasyPrint or the Chinese fonts are missing on the gateway's machine."""

    def __init__(self, reason: str) -> None:
        super().__init__("pdf", reason)

    @property
    def message(self) -> str:
        return "PDF 打印组件不可用（缺少排版库或中文字体），请联系信息技术中心"


@functools.cache
def _weasyprint() -> Any:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: libpango not found by cffi
        raise PdfUnavailable(f"weasyprint: {exc}") from exc
    return weasyprint


def _write(html: str) -> tuple[bytes, set[str]]:
    weasyprint = _weasyprint()
    # The templates need nothing from outside; refusing every URL keeps user data in a page from making
    # the gateway fetch anything (no file:, no http:).
    fetcher = weasyprint.URLFetcher(allowed_protocols=())
    with _lock:
        document = weasyprint.HTML(string=html, url_fetcher=fetcher).render()
        data = document.write_pdf()
    # `fonts` is filled while writing: the families actually embedded.
    return data, {font.family for font in document.fonts.values()}


@functools.cache
def _check_fonts() -> None:
    """Raise PdfUnavailable unless every family in FONTS is installed (checked once per process): without
    the CJK fonts fontconfig silently falls back to a font without Chinese glyphs, printing empty boxes."""
    probe = "".join(f'<p style="font-family: \'{family}\'">学籍在校证明 0123</p>' for family in FONTS)
    _, used = _write(f'<html lang="zh-CN"><body>{probe}</body></html>')
    missing = [family for family in FONTS if family not in used]
    if missing:
        raise PdfUnavailable(f"fonts missing: {', '.join(missing)}")


def require_available() -> None:
    """Fail before doing anything that cannot be repeated (issuing passwords) when no PDF can be made."""
    try:
        _check_fonts()
    except PdfUnavailable as exc:
        log.warning("pdf unavailable", extra={"fields": {"reason": exc.reason}})
        raise


def render(html: str) -> bytes:
    """The PDF of one print page (A4, fonts embedded)."""
    require_available()
    data, _ = _write(html)
    return data


def content_disposition(filename: str, fallback: str, *, download: bool) -> str:
    """RFC 6266 with the Chinese name as RFC 5987 `filename*` and an ASCII name for old clients."""
    kind = "attachment" if download else "inline"
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", fallback)  # parts of it come from a form: nothing to break the header
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def response(html: str, filename: str, fallback: str, *, download: bool = False) -> Response:
    """The PDF as a response: inline (opens in the browser's viewer to print) unless `download`.
    Every answer of the gateway is `Cache-Control: no-store` already; set here too, since a print
    view carries personal data (and a password sheet one-time passwords) that no cache may keep."""
    answer = Response(render(html), mimetype="application/pdf")
    answer.headers["Content-Disposition"] = content_disposition(filename, fallback, download=download)
    answer.headers["Cache-Control"] = "no-store"
    return answer
