"""Benchmark: graduating N students through clearance events, beside a raw kombu baseline.

Run with `make bench` (XUEJI_BENCH_STUDENTS, default 10000). Prints, from one process
run: students per second end to end (clearance event published → every bed released
and every account deactivated), the raw broker rate for the same number of persistent
messages published (with confirms) and consumed with kombu, and their ratio.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

import pytest
from kombu import Connection, Exchange, Queue

from tests.harness import Cluster, clearance_body, populate, wait_for

pytestmark = pytest.mark.perf

N = int(os.environ.get("XUEJI_BENCH_STUDENTS", "10000"))


def raw_kombu_rate(uri: str, count: int) -> float:
    """Persistent messages through one durable queue: publish with confirms, then consume."""
    body = clearance_body("202301010101")
    queue = Queue(f"bench-raw-{uuid.uuid4().hex[:6]}", Exchange("bench.raw", "topic", durable=True),
                  routing_key="raw", durable=True)
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        queue(conn.default_channel).declare()
        start = time.perf_counter()
        producer = conn.Producer()
        for _ in range(count):
            producer.publish(body, exchange=queue.exchange, routing_key="raw", delivery_mode=2,
                             serializer="json")
        got = 0

        def on_message(_body: object, message: object) -> None:
            nonlocal got
            got += 1
            message.ack()  # type: ignore[attr-defined]

        with conn.Consumer(queue, callbacks=[on_message], accept=["json"], prefetch_count=200):
            while got < count:
                conn.drain_events(timeout=30)
        elapsed = time.perf_counter() - start
        queue(conn.default_channel).delete()
    return count / elapsed


def test_graduation_throughput(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> None:
    cluster = make_cluster(fresh_amqp_uri)
    cluster.start()
    numbers = [r["student_number"] for r in populate(cluster, N)]
    bodies = [clearance_body(n) for n in numbers]

    start = time.perf_counter()
    cluster.publish_clearance(bodies)
    wait_for(lambda: cluster.scalar("housing", "SELECT count(*) FROM occupancies WHERE ended_at IS NOT NULL") == N
             and cluster.scalar("identity", "SELECT count(*) FROM accounts WHERE role = 'student' "
                                            "AND active = :f", f=False) == N,
             timeout=3600, interval=0.25, what="every bed released and account deactivated")
    end_to_end = N / (time.perf_counter() - start)

    raw = raw_kombu_rate(fresh_amqp_uri, N)
    print(f"\n{'measure':<52}{'per second':>12}")
    print(f"{'graduation end to end (clearance → bed + account)':<52}{end_to_end:>12.1f}")
    print(f"{'raw kombu: persistent publish (confirms) + consume':<52}{raw:>12.1f}")
    print(f"{'ratio (target ≥ 0.5)':<52}{end_to_end / raw:>12.3f}")
    print(f"students: {N}")
