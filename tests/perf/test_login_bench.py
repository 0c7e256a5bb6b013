"""Benchmark: logins per second through the gateway (Flask app → RPC → identity as its own
`nameko run` process, argon2id at the service's parameters), beside raw argon2-cffi
verification at the same parameters measured in the same run.

Run with `make bench` (XUEJI_BENCH_LOGINS, default 300; XUEJI_BENCH_LOGIN_CONCURRENCY, default 8).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import eventlet
import pytest

from gateway.app import create_app, rpc_pool
from services.identity.domain.passwords import HASHER, hash_password, verify_password
from tests.harness import Cluster

pytestmark = pytest.mark.perf

LOGINS = int(os.environ.get("XUEJI_BENCH_LOGINS", "300"))
CONCURRENCY = int(os.environ.get("XUEJI_BENCH_LOGIN_CONCURRENCY", "8"))
ACCOUNTS = 20
PASSWORD = "Bench-2027-pass"


def raw_argon2_rate(count: int) -> float:
    """Verifications per second of one argon2id hash at the service's parameters, one thread."""
    stored = hash_password(PASSWORD)
    start = time.perf_counter()
    for _ in range(count):
        assert verify_password(stored, PASSWORD)
    return count / (time.perf_counter() - start)


def test_logins_per_second(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> None:
    cluster = make_cluster(fresh_amqp_uri, "sqlite")
    cluster.start("identity")
    names = [f"20{i:05d}" for i in range(ACCOUNTS)]
    for name in names:
        cluster.rpc("identity", "create_account", name, "测试老师", "housing_centre", "institution", [], PASSWORD)
    app = create_app({"TESTING": True, "SECRET_KEY": "bench", "XUEJI_AMQP_URI": fresh_amqp_uri,
                      "XUEJI_RPC_TIMEOUT": 60.0, "XUEJI_CONFIGURE_LOGGING": False})
    try:
        def login(i: int) -> int:
            response = app.test_client().post("/api/v1/session",
                                              json={"username": names[i % ACCOUNTS], "password": PASSWORD})
            return response.status_code

        login(0)  # warm the RPC pool
        pool = eventlet.GreenPool(CONCURRENCY)
        start = time.perf_counter()
        statuses = list(pool.imap(login, range(LOGINS)))
        gateway_rate = LOGINS / (time.perf_counter() - start)
    finally:
        rpc_pool(app).close()
    assert statuses == [200] * LOGINS
    raw = raw_argon2_rate(max(20, LOGINS // 5))
    print(f"\nlogins through the gateway: {gateway_rate:.1f}/s ({LOGINS} logins, {CONCURRENCY} concurrent)"
          f"\nraw argon2id verify (m={HASHER.memory_cost} KiB, t={HASHER.time_cost}, p={HASHER.parallelism}),"
          f" one thread: {raw:.1f}/s\nratio gateway/raw: {gateway_rate / raw:.2f}")
