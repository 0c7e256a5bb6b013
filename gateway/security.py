"""CSRF protection (double-submit token) and the security headers of every response.

The session cookie is SameSite=Lax and HttpOnly; on top of that every cookie-authenticated
write must prove it came from our own pages: a form carries the token as a hidden input,
a script sends it as `X-CSRF-Token` (read from the readable `xueji_csrf` cookie) or marks
itself with `X-Requested-With: XMLHttpRequest`, which no cross-site form can set and
cross-origin scripts cannot send without a CORS preflight we never grant.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Request, Response, current_app, g, request

from gateway.errors import CsrfFailed

COOKIE = "xueji_csrf"
HEADER = "X-CSRF-Token"
FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def csrf_token() -> str:
    """This browser's token (created on first use, sent back as a cookie)."""
    token = g.get("csrf_token")
    if token is None:
        token = request.cookies.get(COOKIE) or ""
        if len(token) < 32:
            token = rotate_csrf_token()
        g.csrf_token = token
    return token


def rotate_csrf_token() -> str:
    """A new token, e.g. at login, so one seen before login is worth nothing after."""
    g.csrf_token = secrets.token_urlsafe(32)
    g.csrf_token_new = True
    return g.csrf_token


def _matches(candidate: str | None) -> bool:
    cookie = request.cookies.get(COOKIE)
    return bool(candidate and cookie) and hmac.compare_digest(str(candidate), str(cookie))


def _cookie_authenticated(req: Request) -> bool:
    return current_app.config["SESSION_COOKIE_NAME"] in req.cookies


def check_api_request() -> None:
    """Unsafe API methods under a session cookie need the header token or the XHR mark."""
    if request.method in SAFE_METHODS or not _cookie_authenticated(request):
        return
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return
    if _matches(request.headers.get(HEADER)):
        return
    raise CsrfFailed()


def check_form() -> None:
    """Every web form POST carries the token as a hidden input."""
    if request.method in SAFE_METHODS:
        return
    if not _matches(request.form.get(FORM_FIELD)):
        raise CsrfFailed()


def _finish(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", CSP)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static":
        # Pages and answers hold personal data: never keep them in shared caches.
        headers.setdefault("Cache-Control", "no-store")
    if g.get("csrf_token_new") or COOKIE not in request.cookies:
        response.set_cookie(
            COOKIE,
            g.get("csrf_token") or csrf_token(),
            httponly=False,  # read by our scripts for the X-CSRF-Token header
            samesite="Lax",
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        )
    return response


def init_app(app: Flask) -> None:
    app.after_request(_finish)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["csrf_field"] = FORM_FIELD

