"""Login rate limit: at most N failed attempts per client IP in a sliding window (default 10 per minute).

Identity already locks an account after 5 failures; this guards the other direction — one
address trying many accounts (password spraying) and hammering identity's argon2 checks. Once
an address has N failures in the window every attempt from it is refused (429 + Retry-After)
until the oldest failure leaves the window. Successful logins do not count: a whole dormitory
behind one NAT address signing in at 8 a.m. must not lock itself out.

Counted per gateway process, in memory: exact with the documented `gunicorn -w 1`; with
several workers or replicas each counts on its own, so the effective limit is N × processes.
Behind `XUEJI_PROXY_COUNT` proxies `ProxyFix` has already put the real client address in
`request.remote_addr`, so the limit applies to the client, not to the proxy.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.wrappers import Response

from gateway.errors import CODES

EXTENSION = "xueji_login_limiter"
# Endpoints (POST) that try a password.
LIMITED = frozenset({"api.login", "web.login"})
DEFAULT_ATTEMPTS = 10
DEFAULT_WINDOW = 60.0


class SlidingWindow:
    """Events per key within the last `window` seconds; thread-safe (gunicorn --threads)."""

    def __init__(self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """0 when `key` may try now, else the seconds until its oldest event leaves the window."""
        now = self._clock()
        with self._lock:
            self._forget_old(now)
            seen = self._seen.get(key)
            if seen is None or len(seen) < self.attempts:
                return 0.0
            return max(seen[0] + self.window - now, 0.001)

    def record(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            self._seen.setdefault(key, deque()).append(now)

    def _forget_old(self, now: float) -> None:
        # Drop expired events of every key, so memory stays bounded by the recent clients.
        for key in list(self._seen):
            seen = self._seen[key]
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if not seen:
                del self._seen[key]


def limiter(app: Flask) -> SlidingWindow:
    return app.extensions[EXTENSION]


def message(retry_after: int) -> str:
    return f"登录尝试过于频繁，请 {retry_after} 秒后再试"


def _client() -> str:
    return request.remote_addr or "unknown"


def _limited() -> bool:
    return request.method == "POST" and request.endpoint in LIMITED


def _check() -> Response | tuple[Response | str, int, dict[str, str]] | None:
    if not _limited():
        return None
    wait = limiter(current_app).wait(_client())
    if not wait:
        return None
    retry_after = max(1, math.ceil(wait))
    headers = {"Retry-After": str(retry_after)}
    if request.endpoint == "api.login":
        body = {"error": {"code": CODES[429], "message": message(retry_after)}}
        return jsonify(body), 429, headers
    return render_template("login.html", error=message(retry_after),
                           username=request.form.get("username", "").strip(),
                           next=request.form.get("next", ""), notice=None), 429, headers


def _count_failure(response: Response) -> Response:
    # A failed login: the API answers 401; the web form shows itself again instead of redirecting.
    if _limited() and response.status_code != 429:
        failed = response.status_code == 401 if request.endpoint == "api.login" else response.status_code == 200
        if failed:
            limiter(current_app).record(_client())
    return response


def init_app(app: Flask) -> None:
    """`XUEJI_LOGIN_ATTEMPTS` / `XUEJI_LOGIN_WINDOW` (seconds) in the app config override the default."""
    app.extensions[EXTENSION] = SlidingWindow(int(app.config.get("XUEJI_LOGIN_ATTEMPTS", DEFAULT_ATTEMPTS)),
                                              float(app.config.get("XUEJI_LOGIN_WINDOW", DEFAULT_WINDOW)))
    app.before_request(_check)
    app.after_request(_count_failure)
