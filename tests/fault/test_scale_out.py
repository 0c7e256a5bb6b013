"""Scale-out: two instances of housing and of identity share the broker and the databases.

Competing consumers on each handler queue, embedded relays claiming outbox rows with
`FOR UPDATE SKIP LOCKED`: every graduation must still release one bed once and close
one account once, also when one instance is killed -9 half-way.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.common.topology import depths
from tests.fault.test_foundation_faults import assert_exactly_once, released
from tests.harness import Cluster, clearance_body, populate, wait_for

pytestmark = [pytest.mark.fault, pytest.mark.slow_fault]

QUEUES = [
    "evt-roster-student.status_changed--housing.on_student_status_changed",
    "evt-roster-student.status_changed--identity.on_student_status_changed",
]


def test_two_instances_each_of_housing_and_identity_apply_every_graduation_once(
        make_cluster: Callable[..., Cluster], fresh_amqp_uri: str) -> None:
    cluster = make_cluster(fresh_amqp_uri, backend="postgresql")
    cluster.start()
    numbers = [r["student_number"] for r in populate(cluster, 600)]
    for name in ("housing", "identity"):
        cluster.start_replica(name)
    wait_for(lambda: all(d.consumers == 2 for d in depths(fresh_amqp_uri, QUEUES)), timeout=60,
             what="two consumers on each queue")

    cluster.publish_clearance(clearance_body(n) for n in numbers[:300])
    wait_for(lambda: released(cluster) >= 100, timeout=120, what="graduations under way")
    cluster.kill9("housing#2")  # its unacknowledged batch goes back to the queue
    cluster.publish_clearance(clearance_body(n) for n in numbers[300:])
    wait_for(lambda: released(cluster) == 600
             and cluster.scalar("identity", "SELECT count(*) FROM accounts WHERE role = 'student' "
                                            "AND active = :f", f=False) == 600,
             timeout=300, what="600 beds released and accounts closed")
    assert_exactly_once(cluster, numbers)
    # Both identity instances consumed (competing consumers), neither doubled anything.
    assert cluster.scalar("identity", "SELECT count(*) FROM audit_log WHERE action = 'account.deactivate'") == 600
