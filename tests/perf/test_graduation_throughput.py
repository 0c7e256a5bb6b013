"""Benchmark: graduating N students through clearance events, beside a raw kombu baseline.

Run with `make bench` (XUEJI_BENCH_STUDENTS, default 10000; XUEJI_BENCH_PROFILE=DIR to sample
each service with py-spy during the measured window). Prints, from one process
run: students per second end to end (clearance event published → every bed released
and every account deactivated), the raw broker rate for the same number of persistent
messages published (with confirms) and consumed with kombu, and their ratio.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc); NaN once it has gone."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pids() -> dict[str, int]:
    """The RabbitMQ node's VM (beam.smp), when it runs on this machine; shared with anything else using it."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and open(f"/proc/{entry}/comm").read().strip() == "beam.smp":
                found[f"RabbitMQ (pid {entry})"] = int(entry)
        except OSError:
            continue
    return found


def start_profilers(pids: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    """With XUEJI_BENCH_PROFILE=DIR, py-spy (on PATH) samples each service during the measured
    window into DIR/<service>.txt (collapsed stacks, e.g. for flamegraph.pl or speedscope)."""
    folder = os.environ.get("XUEJI_BENCH_PROFILE")
    if not folder:
        return []
    os.makedirs(folder, exist_ok=True)
    return [subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--rate", "40", "--format", "raw",
                              "--nonblocking", "--output", os.path.join(folder, f"{name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items()]


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for proc in profilers:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
    for proc in profilers:
        proc.wait(timeout=60)


def test_graduation_throughput(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> None:
    cluster = make_cluster(fresh_amqp_uri)
    cluster.start()
    numbers = [r["student_number"] for r in populate(cluster, N)]
    bodies = [clearance_body(n) for n in numbers]

    pids = {name: proc.pid for name, proc in cluster.procs.items()}
    profilers = start_profilers(pids)
    pids |= {"publisher (this test)": os.getpid()} | broker_pids()
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    start = time.perf_counter()
    cluster.publish_clearance(bodies)
    wait_for(lambda: cluster.scalar("housing", "SELECT count(*) FROM occupancies WHERE ended_at IS NOT NULL") == N
             and cluster.scalar("identity", "SELECT count(*) FROM accounts WHERE role = 'student' "
                                            "AND active = :f", f=False) == N,
             timeout=3600, interval=0.25, what="every bed released and account deactivated")
    elapsed = time.perf_counter() - start
    end_to_end = N / elapsed
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    stop_profilers(profilers)

    raw = raw_kombu_rate(fresh_amqp_uri, N)
    print(f"\n{'measure':<52}{'per second':>12}")
    print(f"{'graduation end to end (clearance → bed + account)':<52}{end_to_end:>12.1f}")
    print(f"{'raw kombu: persistent publish (confirms) + consume':<52}{raw:>12.1f}")
    print(f"{'ratio (target ≥ 0.5)':<52}{end_to_end / raw:>12.3f}")
    print(f"students: {N}, {elapsed:.1f} s; CPU seconds used meanwhile (2 cores = {2 * elapsed:.0f} s available):")
    for name, seconds in sorted(cpu.items(), key=lambda item: -item[1]):
        print(f"  {name:<30}{seconds:>8.1f}")
