"""HousingService in a nameko container over the real broker and a migrated database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook
from sqlalchemy import func, select

from services.common.caller import CONTEXT_KEY
from services.common.db import Database
from services.common.envelope import parse_envelope
from services.common.errors import Forbidden, Invalid, Unauthenticated
from services.common.models import OutboxMessage
from services.common.testing import publish, wait_for
from services.common.topology import bindings_of, declare
from services.housing.adapters.orm import Occupancy
from services.housing.handlers import SettingsError
from services.housing.service import HousingService
from services.housing.tests.factories import caller, registered, room_beds, status_changed

NUMBER = "202301010105"
CENTRE = {CONTEXT_KEY: caller("housing_centre").to_header()}


def config(amqp_uri: str, db: Database) -> dict[str, Any]:
    return {"AMQP_URI": amqp_uri, "HOUSING_DATABASE_URL": db.url}



def test_health_over_the_broker(amqp_uri: str, container_factory: Any,
                                migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("housing")
    container = container_factory(HousingService, config(amqp_uri, db))
    container.start()
    with entrypoint_hook(container, "health") as health:
        assert health() == {"service": "housing", "status": "ok", "db": "ok", "outbox_backlog": 0,
                            "beds": 0, "occupied": 0, "students_known": 0}


def test_leaving_over_the_broker_releases_the_bed_once_and_publishes_it(
        fresh_amqp_uri: str, container_factory: Any, migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("housing")
    declare(fresh_amqp_uri, bindings_of([HousingService]))
    # Roster's side: a queue on housing's exchange that hears about released beds.
    released = Queue("test-roster-hears-bed-released", Exchange("housing.events", "topic", durable=True),
                     routing_key="housing.bed_released", durable=True)
    with Connection(fresh_amqp_uri) as conn:
        released(conn.default_channel).declare()

    container = container_factory(HousingService, config(fresh_amqp_uri, db))
    container.start()

    publish(fresh_amqp_uri, registered(NUMBER, gender="2", name="王芳"))
    with entrypoint_hook(container, "health") as health:
        wait_for(lambda: health()["students_known"] == 1)
    with entrypoint_hook(container, "create_beds", context_data=CENTRE) as create_beds:
        assert create_beds(room_beds("B2", "2号楼", "F", "201")) == {"created": 4}
    with entrypoint_hook(container, "assign_bed", context_data=CENTRE) as assign_bed:
        assert assign_bed(NUMBER, "2号楼-201-3")["bed"]["label"] == "2号楼-201-3"

    leaving = status_changed(NUMBER, 11, "graduated", left=True)
    publish(fresh_amqp_uri, leaving)
    publish(fresh_amqp_uri, leaving)  # a redelivery: must change nothing

    with entrypoint_hook(container, "occupancy", context_data=CENTRE) as occupancy:
        wait_for(lambda: occupancy(NUMBER)["bed"] is None)

    def published() -> list[OutboxMessage]:
        with db.reading() as s:
            return list(s.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "housing.bed_released")))

    wait_for(lambda: any(row.published_at is not None for row in published()))
    with Connection(fresh_amqp_uri) as conn:
        message = None
        deadline = time.monotonic() + 10
        while message is None and time.monotonic() < deadline:
            message = released(conn.default_channel).get(no_ack=True)
            time.sleep(0.05)
        assert message is not None, "roster's queue got no housing.bed_released"
        event = parse_envelope(json.loads(message.body))
    assert event.payload["student_number"] == NUMBER
    assert (event.payload["bed_label"], event.payload["reason"]) == ("2号楼-201-3", "graduated")
    assert event.correlation_id == "corr-11"

    # Both copies were consumed (queue empty), yet one stay ended and one event was written.
    status_queue = "evt-roster-student.status_changed--housing.on_student_status_changed"
    with Connection(fresh_amqp_uri) as conn:
        wait_for(lambda: conn.default_channel.queue_declare(status_queue, passive=True).message_count == 0)
    time.sleep(0.5)
    with db.reading() as s:
        ended = s.scalar(select(func.count()).select_from(Occupancy).where(Occupancy.ended_at.is_not(None)))
    assert ended == 1
    assert len(published()) == 1
    with Connection(fresh_amqp_uri) as conn:
        assert released(conn.default_channel).get(no_ack=True) is None


def test_rpc_errors_cross_the_broker_as_themselves(
        fresh_amqp_uri: str, container_factory: Any, migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("housing")
    declare(fresh_amqp_uri, bindings_of([HousingService]))
    container = container_factory(HousingService, config(fresh_amqp_uri, db))
    container.start()
    publish(fresh_amqp_uri, registered(NUMBER, gender="1", klass="2023010101"))
    with entrypoint_hook(container, "health") as health:
        wait_for(lambda: health()["students_known"] == 1)

    rpc_config = {"AMQP_URI": fresh_amqp_uri}
    with ServiceRpcProxy("housing", rpc_config, context_data=CENTRE) as housing:
        housing.create_beds(room_beds("B1", "1号楼", "M", "101"))
        housing.assign_bed(NUMBER, "1号楼-101-1")
        housing.create_beds(room_beds("B2", "2号楼", "F", "101", beds=1))
        with pytest.raises(Invalid, match="不能安排男生入住"):
            housing.assign_bed(NUMBER, "2号楼-101-1")
    mine = {CONTEXT_KEY: caller("counselor", "classes", "2023010101").to_header()}
    with ServiceRpcProxy("housing", rpc_config, context_data=mine) as housing:
        assert housing.occupancy(NUMBER)["bed"]["label"] == "1号楼-101-1"
    other = {CONTEXT_KEY: caller("counselor", "classes", "2023010102").to_header()}
    with ServiceRpcProxy("housing", rpc_config, context_data=other) as housing:
        with pytest.raises(Forbidden, match="不在您的数据权限范围内"):
            housing.occupancy(NUMBER)
    with ServiceRpcProxy("housing", rpc_config) as housing:
        with pytest.raises(Unauthenticated, match="请先登录"):
            housing.occupancy(NUMBER)


# --- settings are read when the service starts (issue 6) ----------------------------------------
@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_a_mistyped_setting_stops_the_container_at_start(amqp_uri: str, container_factory: Any,
                                                         migrated_db: Callable[[str], Database],
                                                         monkeypatch: pytest.MonkeyPatch, db_backend: str) -> None:
    db = migrated_db("housing")
    monkeypatch.setenv("HOUSING_SUSPENSION_RELEASES_BED", "ture")
    with pytest.raises(SettingsError, match="HOUSING_SUSPENSION_RELEASES_BED must be true or false, not 'ture'"):
        container_factory(HousingService, config(amqp_uri, db)).start()
    # A readable value starts it, and the workers see what was read.
    monkeypatch.setenv("HOUSING_SUSPENSION_RELEASES_BED", "yes")
    container = container_factory(HousingService, config(amqp_uri, db))
    container.start()
    with entrypoint_hook(container, "health") as health:
        assert health()["status"] == "ok"


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_nameko_run_exits_at_once_naming_the_mistyped_setting(amqp_uri: str, migrated_db: Callable[[str], Database],
                                                              db_backend: str) -> None:
    db = migrated_db("housing")
    root = Path(__file__).resolve().parents[3]
    env = dict(os.environ, XUEJI_AMQP_URI=amqp_uri, HOUSING_DATABASE_URL=db.url, PYTHONPATH=str(root),
               HOUSING_SUSPENSION_RELEASES_BED="ture")
    done = subprocess.run([sys.executable, "-m", "nameko", "run", "--config", str(root / "deploy/nameko.yaml"),
                           "services.housing.service:HousingService"], cwd=root, env=env, capture_output=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    output = done.stdout.decode() + done.stderr.decode()
    assert "housing cannot start: HOUSING_SUSPENSION_RELEASES_BED must be true or false, not 'ture'" in output
