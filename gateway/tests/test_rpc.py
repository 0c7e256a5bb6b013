"""The RPC pool against real containers on a real RabbitMQ vhost."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nameko.exceptions import RemoteError

from gateway.rpc import RpcCall, RpcPool, ServiceUnavailable
from gateway.tests import cluster
from services.common.caller import COUNSELOR, STUDENT_AFFAIRS, Caller, Scope
from services.common.errors import Forbidden, Invalid, NotFound, Unauthenticated

COUNSELOR_CALLER = Caller(user_id="u-2001001", username="2001001", role=COUNSELOR,
                          scope=Scope("classes", ("2023010101",)), correlation_id="corr-rpc-1")
AFFAIRS_CALLER = Caller(user_id="u-2001002", username="2001002", role=STUDENT_AFFAIRS,
                        scope=Scope("institution"))


@pytest.fixture
def pool_for() -> Iterator[Callable[..., RpcPool]]:
    pools: list[RpcPool] = []

    def make(uri: str, timeout: float = 3.0) -> RpcPool:
        pool = RpcPool(uri, timeout=timeout)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def test_caller_context_travels_with_the_call_and_is_cleared_after(
    amqp_uri: str, cluster_up: Any, pool_for: Callable[..., RpcPool]
) -> None:
    pool = pool_for(amqp_uri)
    student = pool.call("roster", "get_student", "202301010101", caller=COUNSELOR_CALLER)
    assert student["name"] == "张三"
    assert student["national_id"] == "110101********1234"  # masked for a counselor
    service, method, seen = cluster.SEEN[-1]
    assert (service, method) == ("roster", "get_student")
    assert seen is not None
    assert seen["username"] == "2001001"
    assert seen["correlation_id"] == "corr-rpc-1"
    assert seen["scope"] == {"kind": "classes", "ids": ["2023010101"]}

    # Same pooled proxy, no caller: the context of the previous call must be gone.
    with pytest.raises(Unauthenticated):
        pool.call("roster", "get_student", "202301010101")
    assert pool.created == 1


def test_proxies_are_reused_across_calls(
    amqp_uri: str, cluster_up: Any, pool_for: Callable[..., RpcPool]
) -> None:
    pool = pool_for(amqp_uri)
    for _ in range(20):
        assert pool.call("identity", "health")["status"] == "ok"
    assert pool.created == 1
    assert pool.idle == 1


def test_service_errors_arrive_as_their_own_types(
    amqp_uri: str, cluster_up: Any, pool_for: Callable[..., RpcPool]
) -> None:
    pool = pool_for(amqp_uri)
    with pytest.raises(NotFound, match="未找到学号为 209901010101 的学生"):
        pool.call("roster", "get_student", "209901010101", caller=COUNSELOR_CALLER)
    with pytest.raises(Forbidden, match="不在您的数据权限范围内"):
        pool.call("roster", "get_student", "202302010101", caller=COUNSELOR_CALLER)
    with pytest.raises(Invalid, match="通配符"):
        pool.call("roster", "search_students", "%", 1, 10, caller=COUNSELOR_CALLER)
    with pytest.raises(Unauthenticated, match="用户名或密码错误"):
        pool.call("identity", "login", "2001001", "wrong", "127.0.0.1")
    with pytest.raises(RemoteError) as info:
        pool.call("roster", "get_student", cluster.BROKEN_RECORD, caller=AFFAIRS_CALLER)
    assert info.value.exc_type == "RuntimeError"
    # The service answered every time: the proxy stays in the pool.
    assert (pool.created, pool.discarded, pool.idle) == (1, 0, 1)


def test_concurrent_threads_never_mix_caller_contexts(
    amqp_uri: str, cluster_up: Any, pool_for: Callable[..., RpcPool]
) -> None:
    pool = pool_for(amqp_uri)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        caller = Caller(user_id=f"u{n}", username=f"worker{n}", role="student_affairs",
                        scope=Scope("institution"), correlation_id=f"corr-thread-{n}")
        try:
            for _ in range(5):
                pool.call("roster", "get_student", "202301010102", caller=caller)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not failures
    seen = [(c["username"], c["correlation_id"]) for _, m, c in cluster.SEEN
            if m == "get_student" and c]
    assert sorted(seen) == sorted((f"worker{n}", f"corr-thread-{n}") for n in range(8)
                                  for _ in range(5))
    assert 1 <= pool.created <= 8


def test_unknown_service_is_unavailable_at_once(
    fresh_amqp_uri: str, pool_for: Callable[..., RpcPool]
) -> None:
    pool = pool_for(fresh_amqp_uri, timeout=5.0)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        pool.call("transfer", "health")
    assert time.monotonic() - started < 3.0  # no reply wait: the broker returned the message
    assert info.value.service == "transfer"
    assert info.value.message == "转学服务暂时不可用，请稍后重试"
    # The connection is fine; the proxy goes back to the pool.
    assert (pool.idle, pool.discarded) == (1, 0)


def test_stopped_service_times_out_and_its_proxy_is_discarded(
    fresh_amqp_uri: str, start_services: Callable[..., dict[str, Any]],
    pool_for: Callable[..., RpcPool]
) -> None:
    containers = start_services(fresh_amqp_uri, "aid")
    pool = pool_for(fresh_amqp_uri, timeout=1.0)
    assert pool.call("aid", "health")["service"] == "aid"
    containers["aid"].stop()  # its queue stays: requests wait there unanswered

    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        pool.call("aid", "health")
    assert 0.9 <= time.monotonic() - started < 4.0
    assert info.value.message == "资助服务暂时不可用，请稍后重试"
    assert (pool.idle, pool.discarded) == (0, 1)


def test_broken_connection_is_not_lent_again(
    amqp_uri: str, cluster_up: Any, pool_for: Callable[..., RpcPool]
) -> None:
    pool = pool_for(amqp_uri)
    pool.call("identity", "health")
    idle = pool._idle[0]
    # The broker connection of the idle proxy goes away (broker restart, network cut).
    idle.consumer.connection.connection.transport.sock.shutdown(socket.SHUT_RDWR)

    assert pool.call("identity", "health")["status"] == "ok"
    assert (pool.created, pool.discarded) == (2, 1)
    assert idle not in pool._idle


def test_unreachable_broker_is_unavailable(pool_for: Callable[..., RpcPool]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pool = pool_for(f"amqp://guest:guest@127.0.0.1:{port}/")
    with pytest.raises(ServiceUnavailable) as info:
        pool.call("roster", "health")
    assert info.value.service == "roster"


def test_call_many_reports_each_outcome_on_its_own(
    amqp_uri: str, cluster_up: Any, pool_for: Callable[..., RpcPool]
) -> None:
    pool = pool_for(amqp_uri)
    started = time.monotonic()
    outcomes = pool.call_many(
        {
            "student": ("roster", "get_student", "202301010101"),
            "bed": RpcCall("housing", "occupancy", ("202301010101",)),
            "outside": ("roster", "get_student", "202302010101"),
            "transfer": ("transfer", "health"),
        },
        caller=COUNSELOR_CALLER,
        timeout=2.0,
    )
    assert time.monotonic() - started < 4.0
    assert outcomes["student"].ok and outcomes["student"].value["name"] == "张三"
    assert outcomes["bed"].unwrap()["bed"]["label"] == "东区3号楼-101-2"
    assert isinstance(outcomes["outside"].error, Forbidden)
    assert isinstance(outcomes["transfer"].error, ServiceUnavailable)
    with pytest.raises(ServiceUnavailable):
        outcomes["transfer"].unwrap()
    calls = [(s, m) for s, m, c in cluster.SEEN if c and c["correlation_id"] == "corr-rpc-1"]
    assert sorted(calls) == [("housing", "occupancy"), ("roster", "get_student"),
                             ("roster", "get_student")]


def test_closed_pool_stops_its_proxies(
    amqp_uri: str, cluster_up: Any, pool_for: Callable[..., RpcPool]
) -> None:
    pool = pool_for(amqp_uri)
    pool.call("identity", "health")
    member = pool._idle[0]
    pool.close()
    assert pool.idle == 0
    assert member.consumer.stopped
    with pytest.raises(RuntimeError):
        pool.call("identity", "health")
