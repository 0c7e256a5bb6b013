"""A pool of started nameko `ClusterRpcProxy` instances shared by the gateway's threads.

Starting a standalone proxy opens a broker connection and declares a reply queue, which
costs more than the call itself, so proxies are started lazily, lent to one thread at a
time and returned for reuse. A proxy that timed out or lost its connection may still
receive a stale reply or be half-closed: it is stopped and dropped, never lent again.

The caller context (I6) travels as nameko context data: the proxy's worker context
`data` holds `{CONTEXT_KEY: caller.to_header()}` for the duration of one call only.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from amqp.exceptions import AMQPError
from kombu.exceptions import EncodeError, KombuError
from nameko.exceptions import BadRequest, RemoteError, RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.caller import CONTEXT_KEY, Caller
from services.common.errors import XuejiError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0

# Chinese names of the services, for messages shown to users.
SERVICE_LABELS: dict[str, str] = {
    "identity": "统一身份",
    "roster": "学籍",
    "housing": "宿舍",
    "aid": "资助",
    "transfer": "转学",
}

# Errors that mean "the service answered": the proxy is healthy and the error is the
# service's own (its registered types, nameko's request errors, or a RemoteError).
_REPLIED = (XuejiError, RemoteError, BadRequest)
# Errors of the transport: the proxy's connection cannot be trusted any more.
_BROKEN = (OSError, AMQPError, KombuError, RuntimeError)


def service_label(service: str) -> str:
    return SERVICE_LABELS.get(service, service)


def timeout_from_env(default: float = DEFAULT_TIMEOUT) -> float:
    raw = os.environ.get("XUEJI_RPC_TIMEOUT")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"XUEJI_RPC_TIMEOUT must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ValueError("XUEJI_RPC_TIMEOUT must be positive")
    return value


class ServiceUnavailable(Exception):
    """The service did not answer: no consumer, timed out, or the broker is unreachable."""

    code = "service_unavailable"

    def __init__(self, service: str, reason: str = "") -> None:
        super().__init__(service, reason)
        self.service = service
        self.reason = reason

    @property
    def message(self) -> str:
        return f"{service_label(self.service)}服务暂时不可用，请稍后重试"

    def __str__(self) -> str:
        return f"service {self.service} unavailable: {self.reason}"


@dataclass(frozen=True)
class RpcCall:
    """One call of a `call_many` batch."""

    service: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """The result of one call of a batch: a value, or the error it raised."""

    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class _Member:
    """A started proxy and what the pool needs to know about it."""

    def __init__(self, amqp_uri: str, timeout: float) -> None:
        self.standalone = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=timeout)
        self.cluster = self.standalone.start()

    @property
    def consumer(self) -> Any:
        return self.standalone._reply_listener.queue_consumer

    def set_timeout(self, timeout: float) -> None:
        # The polling consumer reads its timeout at each wait, so it can vary per call.
        self.consumer.timeout = timeout

    def context(self) -> dict[str, Any]:
        return self.standalone._worker_ctx.data

    def forget_pending(self) -> None:
        # A call that never got published (unknown service) leaves its reply event behind.
        self.standalone._reply_listener._reply_events.clear()

    def alive(self) -> bool:
        """Whether the reply connection still stands (checked before each loan)."""
        consumer = self.consumer
        if consumer.stopped or not consumer.connection.connected:
            return False
        # Between calls nothing is due, so a quiet socket is a live one; a readable one
        # holds either a frame (the broker closing us) or end-of-file (it went away).
        # The zero-timeout select costs microseconds.
        sock = getattr(getattr(consumer.connection.connection, "transport", None), "sock", None)
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except ValueError:
            return True  # a descriptor select cannot watch: the call itself will tell
        except OSError:
            return False
        if not readable:
            return True
        try:
            consumer.connection.drain_events(timeout=0.01)
        except TimeoutError:
            return True
        except _BROKEN:
            return False
        return True

    def stop(self) -> None:
        try:
            self.standalone.stop()
        except _BROKEN as exc:
            log.debug("stopping a broken rpc proxy: %s", exc)


class RpcPool:
    """Thread-safe pool of started cluster proxies; see the module docstring."""

    def __init__(
        self,
        amqp_uri: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        max_idle: int = 16,
        max_workers: int = 16,
    ) -> None:
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self.max_idle = max_idle
        self.max_workers = max_workers
        self._idle: list[_Member] = []
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self.created = 0
        self.discarded = 0

    # -- lending -----------------------------------------------------------------------

    def _checkout(self, service: str) -> _Member:
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the rpc pool is closed")
                member = self._idle.pop() if self._idle else None
            if member is None:
                break
            if member.alive():
                return member
            self._discard(member)
        try:
            member = _Member(self.amqp_uri, self.timeout)
        except _BROKEN as exc:
            raise ServiceUnavailable(service, f"cannot reach the broker: {exc}") from exc
        with self._lock:
            self.created += 1
        return member

    def _checkin(self, member: _Member) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(member)
                return
        member.stop()

    def _discard(self, member: _Member) -> None:
        with self._lock:
            self.discarded += 1
        member.stop()

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)

    # -- calling -----------------------------------------------------------------------

    def call(
        self, service: str, method: str, *args: Any, caller: Caller | None = None, **kwargs: Any
    ) -> Any:
        """Call `service.method(*args, **kwargs)` with the pool's timeout.

        Raises the service's own error (`services.common.errors` types, `RemoteError`)
        or `ServiceUnavailable`.
        """
        return self.invoke(service, method, args, kwargs, caller=caller)

    def invoke(
        self,
        service: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        caller: Caller | None = None,
        timeout: float | None = None,
    ) -> Any:
        member = self._checkout(service)
        keep = False
        context = member.context()
        try:
            member.set_timeout(timeout or self.timeout)
            if caller is not None:
                context[CONTEXT_KEY] = caller.to_header()
            result = getattr(member.cluster[service], method)(*args, **dict(kwargs or {}))
            keep = True
            return result
        except _REPLIED:
            keep = True
            raise
        except EncodeError:
            # The gateway's own mistake (arguments that are not JSON), not an outage.
            raise
        except UnknownService as exc:
            member.forget_pending()
            keep = True
            raise ServiceUnavailable(service, "no service is consuming its queue") from exc
        except RpcTimeout as exc:
            raise ServiceUnavailable(service, f"no reply within {exc} s") from exc
        except _BROKEN as exc:
            raise ServiceUnavailable(service, f"connection failed: {exc!r}") from exc
        finally:
            context.pop(CONTEXT_KEY, None)
            if keep:
                self._checkin(member)
            else:
                self._discard(member)

    def call_many(
        self,
        calls: Mapping[str, RpcCall | Sequence[Any]],
        *,
        caller: Caller | None = None,
        timeout: float | None = None,
    ) -> dict[str, Outcome]:
        """Run several calls at once; each key gets its value or its error.

        A call is an `RpcCall` or a tuple `(service, method, *args)`. One failing service
        never affects the others' outcomes.
        """
        per_call = timeout or self.timeout
        normalised = {key: _as_call(spec) for key, spec in calls.items()}
        executor = self._pool_executor()
        futures = {
            key: executor.submit(
                self.invoke, c.service, c.method, c.args, c.kwargs, caller=caller, timeout=per_call
            )
            for key, c in normalised.items()
        }
        # Each call bounds itself with its socket timeout; the margin covers start-up
        # of a new proxy. A call still running after that is reported unavailable.
        deadline = time.monotonic() + per_call + 5.0
        outcomes: dict[str, Outcome] = {}
        for key, future in futures.items():
            try:
                value = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                outcomes[key] = Outcome(error=ServiceUnavailable(normalised[key].service, "late"))
            except Exception as exc:  # noqa: BLE001 - each key carries its own error
                outcomes[key] = Outcome(error=exc)
            else:
                outcomes[key] = Outcome(value=value)
        return outcomes

    def _pool_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.max_workers, thread_name_prefix="xueji-rpc"
                )
            return self._executor

    def close(self) -> None:
        """Stop every idle proxy; proxies on loan are stopped when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            executor, self._executor = self._executor, None
        for member in idle:
            member.stop()
        if executor is not None:
            executor.shutdown(wait=False)


def _as_call(spec: RpcCall | Sequence[Any]) -> RpcCall:
    if isinstance(spec, RpcCall):
        return spec
    service, method, *args = spec
    return RpcCall(service, method, tuple(args))
