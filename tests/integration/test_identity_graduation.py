"""A graduating student (clearance event) cannot log in within seconds, and the session
they had open stops working — real processes, real broker, SQLite."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from services.common.errors import Unauthenticated
from tests.harness import Cluster, clearance_body, populate, wait_for

PASSWORD = "Grad-2027-pass"


def refused(call: Callable[[], object]) -> bool:
    try:
        call()
    except Unauthenticated:
        return True
    return False


def test_graduation_ends_login_and_open_sessions(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> None:
    cluster = make_cluster(fresh_amqp_uri, "sqlite")
    cluster.start()
    leaving, staying = (r["student_number"] for r in populate(cluster, 2))
    for number in (leaving, staying):
        cluster.rpc("identity", "set_password", number, PASSWORD)
    session = cluster.rpc("identity", "login", leaving, PASSWORD, "10.0.0.9")["session_id"]
    other = cluster.rpc("identity", "login", staying, PASSWORD, "10.0.0.9")["session_id"]
    assert cluster.rpc("identity", "resolve_session", session)["username"] == leaving

    started = time.monotonic()
    cluster.publish_clearance([clearance_body(leaving)])
    wait_for(lambda: refused(lambda: cluster.rpc("identity", "resolve_session", session)), timeout=30,
             what="the open session ends")
    with pytest.raises(Unauthenticated, match="账号已停用"):
        cluster.rpc("identity", "login", leaving, PASSWORD, "10.0.0.9")
    elapsed = time.monotonic() - started
    print(f"graduation → session ended and login refused after {elapsed:.2f} s")
    assert elapsed < 30
    assert cluster.rpc("identity", "resolve_session", other)["username"] == staying
