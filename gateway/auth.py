"""Who is asking: the identity session behind the cookie, resolved once per request.

The signed cookie holds only identity's `session_id`; identity stays the one place that
knows whether a session is alive, so ending it there (logout, account disabled) logs the
browser out on its next request.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from flask import current_app, g, session

from gateway.rpc import RpcPool
from gateway.security import rotate_csrf_token
from services.common.caller import ROLE_LABELS, Caller
from services.common.errors import Unauthenticated

log = logging.getLogger(__name__)

SESSION_KEY = "sid"
RPC_EXTENSION = "xueji_rpc"


def rpc() -> RpcPool:
    return current_app.extensions[RPC_EXTENSION]


def request_id() -> str:
    return str(g.get("request_id") or "")


def current_caller() -> Caller | None:
    """The signed-in caller, or None; an ended session clears the cookie."""
    if "caller" in g:
        return g.caller
    caller: Caller | None = None
    session_id = session.get(SESSION_KEY)
    if session_id:
        try:
            data = rpc().call("identity", "resolve_session", session_id)
        except Unauthenticated:
            session.clear()
        else:
            caller = replace(
                Caller.from_dict(data), correlation_id=request_id(), session_id=session_id
            )
            g.must_change_password = bool(data.get("must_change_password"))
    g.caller = caller
    return caller


def require_login() -> Caller:
    caller = current_caller()
    if caller is None:
        raise Unauthenticated("请先登录")
    return caller


def call(service: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """An RPC on behalf of the signed-in caller (401 when nobody is signed in)."""
    return rpc().call(service, method, *args, caller=require_login(), **kwargs)


def long_call(service: str, method: str, *args: Any, timeout: float) -> Any:
    """An RPC that may run for minutes (imports, exports, calendar runs), with its own timeout."""
    return rpc().invoke(service, method, args, caller=require_login(), timeout=timeout)


def sign_in(username: str, password: str, remote_addr: str) -> dict[str, Any]:
    """Log in at identity and bind its session to this browser; returns the login answer."""
    result = rpc().call("identity", "login", username, password, remote_addr)
    session.clear()
    session[SESSION_KEY] = result["session_id"]
    rotate_csrf_token()
    caller = Caller.from_dict(result["caller"])
    g.caller = replace(caller, correlation_id=request_id(), session_id=result["session_id"])
    g.must_change_password = bool(result.get("must_change_password"))
    log.info("login", extra={"fields": {"user": caller.username, "role": caller.role}})
    return result


def sign_out() -> None:
    """Forget the session here first, so the browser is logged out even if identity is down."""
    session_id = session.pop(SESSION_KEY, None)
    session.clear()
    g.caller = None
    rotate_csrf_token()
    if session_id:
        rpc().call("identity", "logout", session_id)


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)
