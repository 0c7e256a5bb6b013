"""Graduation end to end: clearance event → roster status → bed released, account deactivated.

Real processes for every service, a real RabbitMQ vhost, and each service's own
database — SQLite files and PostgreSQL databases.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.harness import Cluster, clearance_body, populate, wait_for


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_graduation_flow(make_cluster: Callable[..., Cluster], fresh_amqp_uri: str, backend: str) -> None:
    cluster = make_cluster(fresh_amqp_uri, backend)
    cluster.start()
    rows = populate(cluster, 20)
    leaving = [r["student_number"] for r in rows[:10]]
    staying = [r["student_number"] for r in rows[10:]]
    assert cluster.rpc("housing", "occupancy", leaving[0])["bed"] is not None
    assert cluster.rpc("identity", "get_account", leaving[0])["active"] is True

    cluster.publish_clearance(clearance_body(n) for n in leaving)

    def all_left() -> bool:
        return all(cluster.rpc("housing", "occupancy", n)["bed"] is None
                   and not cluster.rpc("identity", "get_account", n)["active"] for n in leaving)

    wait_for(all_left, timeout=60, what="beds released and accounts deactivated")
    for n in leaving:
        student = cluster.rpc("roster", "get_student", n)
        assert (student["status"], student["status_label"], student["left"]) == ("graduated", "毕业", True)
    for n in staying:
        assert cluster.rpc("roster", "get_student", n)["status"] == "enrolled"
        assert cluster.rpc("housing", "occupancy", n)["bed"] is not None
        assert cluster.rpc("identity", "get_account", n)["active"] is True
    # each effect exactly once, and every event left the outboxes
    assert cluster.scalar("roster", "SELECT count(*) FROM status_changes") == 10
    assert cluster.scalar("housing", "SELECT count(*) FROM occupancies WHERE ended_at IS NOT NULL") == 10
    wait_for(lambda: all(cluster.rpc(s, "health")["outbox_backlog"] == 0
                         for s in ("roster", "housing", "identity")), what="outboxes drained")
