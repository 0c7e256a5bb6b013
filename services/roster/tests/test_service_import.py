"""The import/export RPCs of RosterService in a real nameko container over RabbitMQ: workbooks
cross as base64 JSON, errors as our types, and new students are published through the outbox."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ClusterRpcProxy
from openpyxl import load_workbook
from psycopg2 import extensions

from services.common.caller import CONTEXT_KEY, Caller, Scope, system_caller
from services.common.errors import Forbidden
from services.common.migrate import upgrade
from services.common.topology import bindings_of, declare
from services.roster import importing
from services.roster.service import RosterService
from services.roster.tests.test_import import counting_forks, person, workbook
from services.roster.tests.test_service import wait_for

IT = Caller("1000002", "1000002", "it_centre", Scope("institution"))
COUNSELOR = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
ORG_UNITS = [
    {"code": "01", "name": "计算机学院", "kind": "college"},
    {"code": "0101", "name": "计科", "kind": "major", "parent_code": "01"},
    {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
]


@pytest.fixture
def roster(fresh_amqp_uri: str, database_url_for: Any, container_factory: Any) -> Any:
    url = database_url_for("roster")  # both back ends: PostgreSQL's COPYs run in threads beside the hub
    upgrade("roster", url)
    declare(fresh_amqp_uri, bindings_of([RosterService]))
    container = container_factory(RosterService, {"AMQP_URI": fresh_amqp_uri, "ROSTER_DATABASE_URL": url})
    container.start()
    return container


def rpc(uri: str, caller: Caller) -> ClusterRpcProxy:
    return ClusterRpcProxy({"AMQP_URI": uri}, context_data={CONTEXT_KEY: caller.to_header()}, timeout=60)


def test_import_over_rpc_publishes_and_exports(roster: Any, fresh_amqp_uri: str) -> None:
    registered = Queue("test-import-registered", Exchange("roster.events", "topic", durable=True),
                       routing_key="student.registered", durable=False, auto_delete=True)
    with Connection(fresh_amqp_uri) as conn:
        registered(conn.default_channel).declare()
        with rpc(fresh_amqp_uri, system_caller("test")) as cluster:
            cluster.roster.upsert_org_units(ORG_UNITS)
        with rpc(fresh_amqp_uri, IT) as cluster:
            template = cluster.roster.import_template()
            assert load_workbook(io.BytesIO(base64.b64decode(template["content"]))).worksheets[0]["A1"].value == "学号"
            bad = cluster.roster.import_students(workbook([person(1), person(2, gender="X")]))
            assert not bad["written"] and bad["errors"][0]["row"] == 3 and bad["annotated"]
            good = cluster.roster.import_students(workbook([person(1), person(2)]))
            assert good["written"] and good["imported"] == 2 and good["annotated"] is None
            exported = cluster.roster.export_students("", "", "")
            assert exported["count"] == 2 and exported["filename"].endswith(".xlsx")

        received: list[dict[str, Any]] = []

        def drain() -> bool:
            with conn.SimpleQueue(registered) as queue:
                while True:
                    try:
                        message = queue.get(timeout=0.2)
                    except queue.Empty:
                        break
                    received.append(json.loads(message.body) if isinstance(message.body, str | bytes)
                                    else message.payload)
                    message.ack()
            return len(received) >= 2

        wait_for(drain, timeout=20)
    assert sorted(m["payload"]["student_number"] for m in received) == ["202301010101", "202301010102"]

    with rpc(fresh_amqp_uri, COUNSELOR) as cluster:
        with pytest.raises(Forbidden):
            cluster.roster.import_students(workbook([person(3)]))
        assert cluster.roster.code_tables()["gender"]["codes"][0] == {"code": "1", "label": "男", "active": True}


def test_a_big_import_forks_inside_the_running_service_and_it_goes_on(roster: Any, fresh_amqp_uri: str,
                                                                      db_backend: str, monkeypatch: Any) -> None:
    """The second half's checks in a child of the worker's process, whose green threads hold live AMQP
    connections, and (PostgreSQL) its COPYs in OS threads beside the eventlet hub: the import answers, the
    same connections serve the calls after it and psycopg2 is cooperative again (its wait callback back)."""
    forks = counting_forks(monkeypatch)
    monkeypatch.setattr(importing, "IMPORT_PROCESSES", 2)
    with rpc(fresh_amqp_uri, system_caller("test")) as cluster:
        cluster.roster.upsert_org_units(ORG_UNITS)
    with rpc(fresh_amqp_uri, IT) as cluster:
        for _ in range(2):
            result = cluster.roster.import_students(workbook([person(i) for i in range(1, 31)]))
            assert result["ok"] and result["imported"] + result["unchanged"] == 30
        assert cluster.roster.get_student("202301010130")["name"]
        assert cluster.roster.health()["status"] == "ok"
    assert forks == [1, 1]
    if db_backend == "postgresql":
        assert extensions.get_wait_callback() is not None
