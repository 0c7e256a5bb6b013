"""Operations through the gateway against the real services: /metrics and the queue page."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kombu import Connection, Exchange
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app, rpc_pool
from services.common.deadletters import list_dead_letters
from tests.harness import Cluster, wait_for

PASSWORD = "Ops@Xueji2026!"
STATUS_QUEUE = "evt-roster-student.status_changed--housing.on_student_status_changed"


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> Cluster:
    running = make_cluster(fresh_amqp_uri)
    running.start()
    running.rpc("identity", "create_account", "1000009", "运维 王工", "it_centre", "institution", [], PASSWORD)
    return running


@pytest.fixture
def app(cluster: Cluster) -> Iterator[Flask]:
    made = create_app({"TESTING": True, "SECRET_KEY": "ops-tests", "XUEJI_AMQP_URI": cluster.amqp_uri,
                       "XUEJI_CONFIGURE_LOGGING": False, "XUEJI_RPC_TIMEOUT": 5.0})
    yield made
    rpc_pool(made).close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def login(client: FlaskClient) -> None:
    answer = client.post("/api/v1/session", json={"username": "1000009", "password": PASSWORD})
    assert answer.status_code == 200, answer.get_json()


def test_metrics_gathers_every_service_and_the_broker(app: Flask, cluster: Cluster) -> None:
    client = app.test_client()
    cluster.rpc("roster", "search_students")
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    got = samples(answer.get_data(as_text=True))
    for service in ("identity", "roster", "housing", "aid", "transfer"):
        assert got[("xueji_service_up", (("service", service),))] == 1
        assert ("xueji_outbox_backlog", (("service", service),)) in got
    calls = ("xueji_entrypoint_calls_total", (("kind", "rpc"), ("method", "search_students"),
                                              ("outcome", "ok"), ("service", "roster")))
    assert got[calls] >= 1
    assert got[("xueji_queue_messages", (("queue", STATUS_QUEUE),))] == 0
    assert got[("xueji_dead_letters", (("queue", STATUS_QUEUE),))] == 0
    # the gateway's own requests are counted too
    again = samples(client.get("/metrics").get_data(as_text=True))
    assert again[("xueji_http_requests_total", (("endpoint", "ops.metrics"), ("method", "GET"),
                                                ("status", "200")))] >= 1

    cluster.stop("aid")
    down = samples(client.get("/metrics").get_data(as_text=True))
    assert down[("xueji_service_up", (("service", "aid"),))] == 0
    assert down[("xueji_service_up", (("service", "roster"),))] == 1


def test_metrics_needs_the_token_when_one_is_set(fresh_amqp_uri: str) -> None:
    # No services run: the scrape still answers, with every service reported down.
    guarded = create_app({"TESTING": True, "SECRET_KEY": "ops-tests", "XUEJI_AMQP_URI": fresh_amqp_uri,
                          "XUEJI_CONFIGURE_LOGGING": False, "XUEJI_METRICS_TOKEN": "s3cret-token",
                          "XUEJI_HEALTH_TIMEOUT": 0.5})
    try:
        client = guarded.test_client()
        assert client.get("/metrics").status_code == 403
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        scraped = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert scraped.status_code == 200
        assert samples(scraped.get_data(as_text=True))[("xueji_service_up", (("service", "roster"),))] == 0
        # without a token, only loopback may scrape
        open_app = create_app({"TESTING": True, "SECRET_KEY": "x", "XUEJI_AMQP_URI": fresh_amqp_uri,
                               "XUEJI_CONFIGURE_LOGGING": False})
        remote = open_app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
        assert remote.status_code == 403
        rpc_pool(open_app).close()
    finally:
        rpc_pool(guarded).close()


def test_a_dead_letter_shows_on_the_queue_page_and_can_be_replayed(app: Flask, cluster: Cluster) -> None:
    with Connection(cluster.amqp_uri, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(json.dumps({"not": "an envelope", "event_id": "poison-1"}),
                                exchange=Exchange("roster.events", "topic", durable=True),
                                routing_key="student.status_changed", content_type="application/json",
                                delivery_mode=2)
    wait_for(lambda: list_dead_letters(cluster.amqp_uri, [STATUS_QUEUE]), timeout=30, what="dead letter")

    client = app.test_client()
    assert client.get("/system/queues").status_code in (302, 401)  # login first
    login(client)
    page = client.get("/system/queues").get_data(as_text=True)
    assert "消息队列" in page and "poison-1" in page and "InvalidEvent" in page
    assert '<span class="tag tag-danger">1</span>' in page

    token = client.get_cookie("xueji_csrf")
    assert token is not None
    answer = client.post("/system/queues/replay", data={"queue": STATUS_QUEUE, "event_id": "poison-1",
                                                        "csrf_token": token.value})
    assert answer.status_code == 302 and "replayed=1" in answer.headers["Location"]
    # Still poison: back in the dead-letter queue after its one attempt.
    wait_for(lambda: list_dead_letters(cluster.amqp_uri, [STATUS_QUEUE]), timeout=30, what="dead again")
    refused = client.post("/system/queues/replay", data={"queue": "no-such-queue", "csrf_token": token.value})
    assert refused.status_code == 400

    # the page is for operators only
    cluster.rpc("identity", "create_account", "1000010", "宿管 李老师", "housing_centre", "institution", [],
                PASSWORD)
    other = app.test_client()
    assert other.post("/api/v1/session", json={"username": "1000010", "password": PASSWORD}).status_code == 200
    assert other.get("/system/queues").status_code == 403
