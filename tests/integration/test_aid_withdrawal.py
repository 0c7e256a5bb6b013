"""End to end over real RabbitMQ and separate service processes: a student who leaves (roster's status
event) is flagged by aid and receives no further instalment, while classmates keep being paid (A1)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date

import pytest

from tests.harness import Cluster, student_rows, wait_for

YEAR = "2026-2027"


def register(cluster: Cluster, rows: list[dict]) -> None:
    classes = sorted({r["class_code"] for r in rows})
    cluster.rpc("roster", "upsert_org_units",
                [{"code": "01", "name": "计算机学院", "kind": "college"},
                 {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"}]
                + [{"code": c, "name": f"计科{c[-2:]}", "kind": "class", "parent_code": "0101"} for c in classes])
    cluster.rpc("roster", "register_students", rows)


def award_grant(cluster: Cluster, rows: list[dict]) -> None:
    """Identify, allocate, apply and review through every step (as the system caller)."""
    klass = rows[0]["class_code"]
    for level, extra in (("programme", {}), ("college", {"college_code": "01"}), ("class", {"class_code": klass})):
        cluster.rpc("aid", "allocate_quota", {"programme_code": "GJZXJ", "academic_year": YEAR, "level": level,
                                              "places": len(rows), **extra})
    for r in rows:
        cluster.rpc("aid", "identify_needy", {
            "student_number": r["student_number"], "academic_year": YEAR, "level": "特别困难",
            "reasons": "建档立卡户", "evidence": ["扶贫手册"], "flags": ["建档立卡"], "id_number": r["national_id"]})
        app = cluster.rpc("aid", "apply", {"student_number": r["student_number"], "programme_code": "GJZXJ",
                                           "academic_year": YEAR, "statement": "家庭困难"})
        for _ in range(4):
            app = cluster.rpc("aid", "review", app["id"], "approve")
        assert app["status"] == "audited"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_student_who_leaves_gets_no_further_instalment(make_cluster: Callable[..., Cluster],
                                                         fresh_amqp_uri: str, backend: str) -> None:
    cluster = make_cluster(fresh_amqp_uri, backend)
    cluster.start("roster", "aid")
    rows = student_rows(3)
    register(cluster, rows)
    wait_for(lambda: cluster.rpc("aid", "health")["students_known"] == 3, what="aid knows the students")
    award_grant(cluster, rows)
    leaver, stayer = rows[0]["student_number"], rows[1]["student_number"]

    first = cluster.rpc("aid", "pay_instalments", date.today().isoformat())
    assert (first["paid"], first["stopped"]) == (3, 0)  # the first of 10 instalments, for everyone

    # The student leaves without a degree (肄业): the clearance system tells roster, roster tells aid.
    cluster.publish_clearance([{"event_id": str(uuid.uuid4()), "occurred_at": "2026-11-20T10:00:00+08:00",
                                "student_number": leaver, "national_id_number": None, "outcome": "attendance",
                                "clearance_batch": "2026-11", "items": {"library": "ok"}}])
    wait_for(lambda: cluster.rpc("aid", "enrolled_student", leaver)["stop_instalments"], timeout=60,
             what="aid flags the leaver")

    later = cluster.rpc("aid", "pay_instalments", "2099-12-31")
    assert later["stopped_students"] == [leaver]
    assert (later["paid"], later["stopped"]) == (18, 9)
    leaver_plan = cluster.rpc("aid", "student_instalments", leaver)
    assert [i["state"] for i in leaver_plan["instalments"]] == ["paid"] + ["stopped"] * 9
    assert {i["state"] for i in cluster.rpc("aid", "student_instalments", stayer)["instalments"]} == {"paid"}
    again = cluster.rpc("aid", "pay_instalments", "2099-12-31")
    assert (again["paid"], again["stopped"]) == (0, 0)
    violations = cluster.rpc("aid", "consistency_check", YEAR)["violations"]
    assert [(v["rule"], v["student_number"]) for v in violations] == [("needy_left", leaver)]
    register_rows = cluster.rpc("aid", "aided_register", YEAR)["items"]
    assert {r["student_number"]: r["stop_instalments"] for r in register_rows}[leaver] is True
