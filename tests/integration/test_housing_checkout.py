"""Housing end to end over a real RabbitMQ, every service its own process.

- a leaving event (delivered twice) releases exactly one bed, once;
- the housing centre's bulk check-out of a graduating cohort while the graduation events
  for the same students arrive: each bed released once, no error, nothing dead-lettered.

`make test` runs it with 300 students; the 5,000-student version is in
tests/perf/test_housing_bench.py (`make bench`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

import eventlet
import pytest
from kombu import Connection
from stdnum.cn import ric

from services.common.testing import publish, status_changed
from services.roster.tests.factories import cn_name
from tests.harness import Cluster, clearance_body, wait_for

DEAD = "evt-roster-student.status_changed--housing.on_student_status_changed.dead"


def cohort_rows(count: int) -> list[dict[str, Any]]:
    """`count` valid 2023 students of college 01, 50 per class, 50 classes per major (R6
    numbers), alternating gender, each with a distinct valid ID number (R13)."""
    rows = []
    for i in range(count):
        klass = f"202301{i // 2500 + 1:02d}{i // 50 % 50 + 1:02d}"
        gender = "1" if i % 2 == 0 else "2"
        born = date.fromordinal(date(2000, 1, 1).toordinal() + i // 400)
        body = f"110101{born:%Y%m%d}{(i % 400) * 2 + (1 if gender == '1' else 0):03d}"
        rows.append({"student_number": f"{klass}{i % 50 + 1:02d}", "name": cn_name(i, 5), "gender": gender,
                     "birth_date": born.isoformat(), "id_type": "1",
                     "national_id": body + ric.calc_check_digit(body + "0"), "ethnicity": "01",
                     "entry_month": "2023-09", "class_code": klass})
    return rows


def enrol_and_house(cluster: Cluster, count: int) -> list[str]:
    """Register `count` students at roster, give housing enough beds, allocate them automatically."""
    rows = cohort_rows(count)
    classes = sorted({r["class_code"] for r in rows})
    majors = sorted({c[4:8] for c in classes})
    cluster.rpc("roster", "upsert_org_units",
                [{"code": "01", "name": "计算机学院", "kind": "college"}]
                + [{"code": m, "name": f"专业{m}", "kind": "major", "parent_code": "01"} for m in majors]
                + [{"code": c, "name": f"{c[6:8]}专业{c[-2:]}班", "kind": "class", "parent_code": c[4:8]}
                   for c in classes])
    for i in range(0, count, 500):
        cluster.rpc("roster", "register_students", rows[i:i + 500], timeout=120)
    beds = [{"building_code": code, "building_name": f"{code}号楼", "gender_policy": policy,
             "room_no": str(100 + n // 4), "capacity": 4, "bed_no": str(n % 4 + 1)}
            for code, policy in (("M1", "M"), ("F1", "F")) for n in range(count // 2 + 4)]
    for i in range(0, len(beds), 2000):
        cluster.rpc("housing", "create_beds", beds[i:i + 2000], timeout=120)
    wait_for(lambda: cluster.rpc("housing", "health")["students_known"] >= count, timeout=180,
             what="housing knows every student")
    placed = cluster.rpc("housing", "allocate_intake", {"entry_year": "2023"}, True, timeout=300)
    assert placed["placed"] == count and placed["unplaced"] == []
    return [r["student_number"] for r in rows]


def dead_letters(cluster: Cluster) -> int:
    with Connection(cluster.amqp_uri) as conn:
        return conn.default_channel.queue_declare(DEAD, passive=True).message_count


def test_a_leaving_event_releases_exactly_one_bed_once(make_cluster: Callable[..., Cluster],
                                                       fresh_amqp_uri: str) -> None:
    cluster = make_cluster(fresh_amqp_uri, "postgresql")
    cluster.start("roster", "housing", "identity")
    numbers = enrol_and_house(cluster, 20)
    leaver = numbers[3]
    leaving = status_changed(leaver, 10_000, "withdrawn", left=True)
    publish(cluster.amqp_uri, leaving)
    publish(cluster.amqp_uri, leaving)  # redelivered: must change nothing
    wait_for(lambda: cluster.rpc("housing", "checked_out", leaver)["checked_out"], what="bed released")
    wait_for(lambda: cluster.rpc("housing", "health")["outbox_backlog"] == 0, what="outbox drained")
    assert cluster.scalar("housing", "SELECT count(*) FROM occupancies WHERE ended_at IS NOT NULL") == 1
    assert cluster.scalar("housing", "SELECT count(*) FROM outbox WHERE event_type = 'housing.bed_released'") == 1
    assert cluster.scalar("housing", "SELECT count(*) FROM beds WHERE occupant IS NOT NULL") == 19
    assert dead_letters(cluster) == 0


def bulk_check_out_during_graduation(cluster: Cluster, count: int) -> float:
    """Returns the seconds from the first graduation event to every effect settled."""
    numbers = enrol_and_house(cluster, count)
    start = time.perf_counter()
    # The clearance system graduates half the cohort while the housing centre checks out all of it.
    sender = eventlet.spawn(cluster.publish_clearance, (clearance_body(n) for n in numbers[::2]))
    result = cluster.rpc("housing", "check_out_many", {"student_numbers": numbers}, timeout=600)
    sender.wait()
    assert result["checked_out"] + result["without_bed"] == count

    wait_for(lambda: cluster.scalar("roster", "SELECT count(*) FROM status_changes") == len(numbers[::2]),
             timeout=600, what="every graduation applied by roster")
    wait_for(lambda: cluster.rpc("housing", "health")["outbox_backlog"] == 0
             and cluster.rpc("roster", "health")["outbox_backlog"] == 0, timeout=300, what="outboxes drained")
    status_queue = "evt-roster-student.status_changed--housing.on_student_status_changed"
    with Connection(cluster.amqp_uri) as conn:
        wait_for(lambda: conn.default_channel.queue_declare(status_queue, passive=True).message_count == 0,
                 timeout=600, what="housing consumed every status change")
    # Each bed released once: one ended stay and one bed_released event per student.
    assert cluster.scalar("housing", "SELECT count(*) FROM beds WHERE occupant IS NOT NULL") == 0
    assert cluster.scalar("housing", "SELECT count(*) FROM occupancies WHERE ended_at IS NOT NULL") == count
    assert cluster.scalar("housing", "SELECT count(*) FROM outbox WHERE event_type = 'housing.bed_released'") == count
    assert cluster.scalar("housing", "SELECT count(DISTINCT student_number) FROM occupancies") == count
    assert dead_letters(cluster) == 0
    assert "Traceback" not in cluster.log("housing")
    return time.perf_counter() - start


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bulk_check_out_while_graduation_events_arrive(make_cluster: Callable[..., Cluster],
                                                       fresh_amqp_uri: str, backend: str) -> None:
    cluster = make_cluster(fresh_amqp_uri, backend)
    cluster.start("roster", "housing", "identity")
    bulk_check_out_during_graduation(cluster, 300)
