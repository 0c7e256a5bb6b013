"""Benchmark: N concurrent transfers between our institution and the peer simulator, end to end, beside
the raw broker round-trip rate for the same number of messages in the same run (`make bench`;
`XUEJI_BENCH_TRANSFERS`, default 1,000; `XUEJI_BENCH_BACKEND` sqlite | postgresql, default sqlite).

We are the inflow side: our office files each transfer (evidence attached) and our authority approves it
(RPCs from a few concurrent clients, as staff would); the request goes out signed; the simulator
(tests/peer.py) answers each request as an outflow institution at once (two approvals and the record);
we verify and apply each message, ack it, and roster admits the student with a new number. Measured:
from the first filing to the last transfer `completed`. The raw rate is persistent messages published
with confirms and consumed with acks by kombu, as many as the interchange messages both sides sent.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.caller import CONTEXT_KEY
from services.common.testing import caller
from tests.harness import Cluster, national_id, wait_for
from tests.peer import PeerInstitution

pytestmark = pytest.mark.perf

N = int(os.environ.get("XUEJI_BENCH_TRANSFERS", "1000"))
BACKEND = os.environ.get("XUEJI_BENCH_BACKEND", "sqlite")
US, PEER = "4142010001", "4133010002"
CLIENTS = 8  # concurrent staff clients filing and approving
PER_CLASS = 50
PROCESSES = ("roster", "transfer", "identity", "housing")
DIGITS = "零一二三四五六七八九"
PDF = base64.b64encode(b"%PDF-1.4\n% application\n").decode()


def classes(count: int) -> list[str]:
    return [f"20250101{c + 1:02d}" for c in range(count)]


def newcomer(i: int) -> dict[str, Any]:
    gender = "1" if i % 2 else "2"
    id_number = national_id(900000 + i, gender)
    return {"national_student_id": f"G{id_number}", "name": "转入" + "".join(DIGITS[int(d)] for d in f"{i:04d}"),
            "gender": gender, "birth_date": f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}",
            "id_type": "1", "id_number": id_number, "outflow_student_number": f"2024{i:08d}"}


def raw_round_trip_rate(uri: str, count: int) -> float:
    """Persistent messages through one durable queue: publish with confirms, then consume with acks."""
    body = os.urandom(600)  # about an interchange message
    queue = Queue(f"bench-raw-{uuid.uuid4().hex[:6]}", Exchange("bench.raw", "topic", durable=True),
                  routing_key="raw", durable=True)
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        queue(conn.default_channel).declare()
        start = time.perf_counter()
        producer = conn.Producer()
        for _ in range(count):
            producer.publish(body, exchange=queue.exchange, routing_key="raw", delivery_mode=2,
                             content_type="application/json", content_encoding="utf-8")
        got = 0

        def on_message(message: Any) -> None:
            nonlocal got
            got += 1
            message.ack()

        with conn.Consumer(queue, on_message=on_message, prefetch_count=200):
            while got < count:
                conn.drain_events(timeout=30)
        elapsed = time.perf_counter() - start
        queue(conn.default_channel).delete()
    return count / elapsed


def test_transfer_throughput(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> None:
    cluster = make_cluster(fresh_amqp_uri, backend=BACKEND,
                           env={"TRANSFER_INSTITUTION_CODE": US, "TRANSFER_SEND_INTERVAL": "0.2"})
    cluster.start(*PROCESSES)
    targets = classes((N + PER_CLASS - 1) // PER_CLASS)
    cluster.rpc("roster", "upsert_org_units",
                [{"code": "01", "name": "计算机学院", "kind": "college"},
                 {"code": "0101", "name": "计算机专业", "kind": "major", "parent_code": "01"}]
                + [{"code": c, "name": f"计科{c[-2:]}班", "kind": "class", "parent_code": "0101"} for c in targets])
    cluster.rpc("transfer", "save_peer", PEER, "浙江模拟学院", "33", "330000")
    secret = cluster.rpc("transfer", "add_peer_key", PEER, "k1")["secret"]
    peer = PeerInstitution(fresh_amqp_uri, PEER, partner=US, keys={"k1": base64.b64decode(secret)})

    def answer(request: dict[str, Any]) -> None:  # as an outflow institution that approves at once
        transfer_id, student = request["transfer_id"], request["payload"]["student"]
        peer.decision(transfer_id, "outflow_school")
        peer.decision(transfer_id, "outflow_authority")
        peer.record(transfer_id, PeerInstitution.record_of(student))

    peer.auto_outflow = answer
    peer.start()
    office = {CONTEXT_KEY: caller("academic_affairs").to_header()}
    authority = {CONTEXT_KEY: caller("authority", "area", "420100").to_header()}
    work = list(range(N))

    def client(_: int) -> None:
        with ClusterRpcProxy({"AMQP_URI": fresh_amqp_uri}, context_data=office, timeout=120) as filing, \
                ClusterRpcProxy({"AMQP_URI": fresh_amqp_uri}, context_data=authority, timeout=120) as deciding:
            while work:
                i = work.pop()
                view = filing.transfer.file_transfer(newcomer(i), PEER, "inter_province", "监护人工作调动",
                                                     targets[i // PER_CLASS],
                                                     evidence=[{"filename": "申请表.pdf", "data": PDF}])
                deciding.transfer.decide_transfer(view["transfer_id"], "inflow_authority", True)

    try:
        start = time.perf_counter()
        pool = eventlet.GreenPool(CLIENTS)
        list(pool.imap(client, range(CLIENTS)))
        filed = time.perf_counter() - start
        wait_for(lambda: cluster.scalar("transfer", "SELECT count(*) FROM transfers WHERE state = 'completed'") == N,
                 timeout=3600, interval=0.25, what=f"{N} transfers completed")
        elapsed = time.perf_counter() - start
    finally:
        peer.close()
    # Every message on the wire: each publication of ours (re-sends included) and each one we received.
    sent, resent = cluster.sql("transfer", "SELECT coalesce(sum(attempts), 0), coalesce(sum(attempts - 1), 0) "
                                           "FROM interchange_messages WHERE direction = 'out' AND attempts > 0")[0]
    received = int(cluster.scalar("transfer", "SELECT count(*) FROM interchange_messages WHERE direction = 'in'"))
    messages = int(sent) + received
    admitted = int(cluster.scalar("roster", "SELECT count(*) FROM transfer_admissions"))
    assert admitted == N
    assert len(peer.messages("transfer.request")) == N

    raw = raw_round_trip_rate(fresh_amqp_uri, messages)
    print(f"\n{'measure':<58}{'per second':>12}")
    print(f"{'transfers end to end (filed → approved → admitted)':<58}{N / elapsed:>12.1f}")
    print(f"{'interchange messages (both ways, signed, verified, acked)':<58}{messages / elapsed:>12.1f}")
    print(f"{'raw kombu: persistent publish (confirms) + consume':<58}{raw:>12.1f}")
    print(f"{'ratio (interchange messages / raw)':<58}{messages / elapsed / raw:>12.3f}")
    print(f"transfers: {N}, messages: {messages} ({sent} sent of which {resent} re-sent before their ack came, "
          f"{received} received), backend: {BACKEND}; filing and approving took {filed:.1f} s, "
          f"all completed after {elapsed:.1f} s")
