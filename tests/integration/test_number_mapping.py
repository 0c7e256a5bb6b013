"""R3 end to end over real RabbitMQ: the mapping sheet replaces provisional numbers (考生号) and every
service follows — the student, their account (login with the new number), bed, aid record and
transfer's copy. A bad row changes nothing; applying the file again changes nothing."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from kombu import Connection, Exchange
from openpyxl import Workbook, load_workbook

from services.common.errors import Unauthenticated
from services.common.testing import caller, status_changed
from services.roster.tests.factories import student
from tests.harness import Cluster, wait_for

PASSWORD = "Xinsheng-2026-ok"
CLASS = "2023010101"
EXAMS = [f"2311010115{i:04d}" for i in (1, 2, 3)]
NEW = [f"{CLASS}{i:02d}" for i in (1, 2, 3)]
ACADEMIC = caller("academic_affairs")
OPERATOR = caller("aid_operator")
CENTRE = caller("housing_centre")


def sheet(rows: list[tuple[str, str, str]]) -> str:
    wb = Workbook()
    ws = wb.active
    ws.append(["考生号", "学号", "姓名"])
    for row in rows:
        ws.append(list(row))
    buffer = io.BytesIO()
    wb.save(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def logs_in(cluster: Cluster, username: str) -> bool:
    try:
        return bool(cluster.rpc("identity", "login", username, PASSWORD, "10.0.0.9")["session_id"])
    except Unauthenticated:
        return False


@pytest.mark.parametrize("backend", ["sqlite"])
def test_mapping_renames_the_student_everywhere(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str,
                                                backend: str) -> None:
    cluster = make_cluster(fresh_amqp_uri, backend)
    cluster.start()
    cluster.rpc("roster", "upsert_org_units", [
        {"code": "01", "name": "计算机学院", "kind": "college"},
        {"code": "0101", "name": "计算机科学", "kind": "major", "parent_code": "01"},
        {"code": CLASS, "name": "计科2301", "kind": "class", "parent_code": "0101"}])
    rows: list[dict[str, Any]] = []
    for seat, exam in enumerate(EXAMS, start=1):
        rows.append({**student(seat, klass=CLASS), "student_number": exam, "exam_number": exam})
    cluster.rpc("roster", "register_students", rows)
    names = [r["name"] for r in rows]
    cluster.rpc("housing", "create_beds", [{"building_code": "B1", "building_name": "1号楼", "gender_policy": "M",
                                            "room_no": "101", "capacity": 4, "bed_no": str(n)} for n in (1, 2)])
    wait_for(lambda: cluster.rpc("housing", "health")["students_known"] >= 3, what="housing knows the students")
    cluster.as_(CENTRE).housing.assign_bed(EXAMS[0], "1号楼-101-1")
    wait_for(lambda: cluster.rpc("identity", "health")["accounts"] >= 3, what="identity has the accounts")
    cluster.rpc("identity", "set_password", EXAMS[0], PASSWORD)
    assert logs_in(cluster, EXAMS[0])
    wait_for(lambda: cluster.scalar("aid", "SELECT count(*) FROM students") == 3, what="aid knows the students")
    cluster.as_(OPERATOR).aid.identify_needy({
        "student_number": EXAMS[0], "academic_year": "2026-2027", "level": "困难", "reasons": "父亲重病，家庭收入低",
        "evidence": ["低保证.pdf"], "flags": [], "id_number": rows[0]["national_id"], "income_per_capita": 3200})
    wait_for(lambda: cluster.scalar("transfer", "SELECT count(*) FROM students") == 3,
             what="transfer knows the students")

    roster = cluster.as_(ACADEMIC).roster
    good = sheet(list(zip(EXAMS, NEW, names, strict=True)))
    # One bad row (a number of another class): nothing changes, the workbook comes back marked.
    bad = sheet([*zip(EXAMS[:2], NEW[:2], names[:2], strict=True), (EXAMS[2], "202301010203", names[2])])
    refused = roster.apply_number_mapping(bad, "教务〔2026〕12号")
    assert not refused["ok"] and refused["error_rows"] == 1
    marked = load_workbook(io.BytesIO(base64.b64decode(refused["annotated"]))).worksheets[0]
    assert "班级" in marked["B4"].comment.text and marked["B2"].comment is None
    assert cluster.scalar("roster", "SELECT count(*) FROM students WHERE student_number IN (:a, :b, :c)",
                          a=EXAMS[0], b=EXAMS[1], c=EXAMS[2]) == 3

    preview = roster.preview_number_mapping(good)
    assert preview["ok"] and preview["changes"] == 3
    applied = roster.apply_number_mapping(good, "教务〔2026〕12号")
    assert applied["ok"] and applied["changes"] == 3
    assert roster.get_student(NEW[0])["name"] == names[0]
    assert roster.number_changes(NEW[0])["former_numbers"] == [EXAMS[0]]

    wait_for(lambda: logs_in(cluster, NEW[0]), what="the account follows the new number")
    assert not logs_in(cluster, EXAMS[0])
    wait_for(lambda: cluster.as_(CENTRE).housing.occupancy(NEW[0])["bed"]["label"] == "1号楼-101-1",
             what="the bed follows")
    wait_for(lambda: cluster.as_(OPERATOR).aid.needy_record(NEW[0], "2026-2027")["level"] == "困难",
             what="the aid record follows")
    wait_for(lambda: sorted(r[0] for r in cluster.sql("transfer", "SELECT student_number FROM students")) == NEW,
             what="transfer's copy follows")
    wait_for(lambda: sorted(r[0] for r in cluster.sql("aid", "SELECT student_number FROM students")) == NEW,
             what="aid's copy follows")

    published = cluster.scalar("roster", "SELECT count(*) FROM outbox WHERE event_type = 'student.number_changed'")
    again = roster.apply_number_mapping(good, "教务〔2026〕12号")
    assert again["ok"] and again["changes"] == 0 and again["unchanged"] == 3
    assert cluster.scalar("roster", "SELECT count(*) FROM outbox WHERE event_type = 'student.number_changed'") \
        == published == 3
    assert cluster.scalar("roster", "SELECT count(*) FROM number_changes") == 3

    late_status_change_for_the_former_number(cluster)


def publish_as_roster(cluster: Cluster, envelope: dict[str, Any]) -> None:
    with Connection(cluster.amqp_uri, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(json.dumps(envelope), exchange=Exchange("roster.events", "topic", durable=True),
                                routing_key=envelope["type"], content_type="application/json",
                                content_encoding="utf-8", delivery_mode=2)


def late_status_change_for_the_former_number(cluster: Cluster) -> None:
    """A status change roster published for the 考生号 before the mapping, delivered only now (its own
    queue, held up): it reaches the renamed student in every service, once."""
    late = status_changed(EXAMS[0], 10**9, "withdrawn").to_wire()
    publish_as_roster(cluster, late)
    wait_for(lambda: cluster.as_(CENTRE).housing.occupancy(NEW[0])["bed"] is None, what="the bed is released")
    wait_for(lambda: not logs_in(cluster, NEW[0]), what="the renamed account is deactivated")
    for service in ("aid", "transfer"):
        wait_for(lambda s=service: cluster.scalar(s, "SELECT status FROM students WHERE student_number = :n",
                                                  n=NEW[0]) == "withdrawn", what=f"{service}'s copy left")
    assert cluster.scalar("aid", "SELECT stop_instalments FROM students WHERE student_number = :n", n=NEW[0])
    # Delivered again, then another change behind it on the same queue: once that one is in, so is the repeat.
    publish_as_roster(cluster, late)
    publish_as_roster(cluster, status_changed(EXAMS[1], 10**9 + 1, "suspended", left=False).to_wire())
    wait_for(lambda: cluster.scalar("housing", "SELECT status FROM students WHERE student_number = :n",
                                    n=NEW[1]) == "suspended", what="the change behind the repeat")
    assert cluster.scalar("housing", "SELECT count(*) FROM outbox WHERE event_type = 'housing.bed_released'") == 1
    for service in ("housing", "aid", "transfer", "identity"):
        assert cluster.scalar(service, "SELECT count(*) FROM students WHERE student_number = :n", n=EXAMS[0]) == 0
