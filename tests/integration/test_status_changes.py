"""学籍异动 end to end (issue 5): roster's status changes over a real RabbitMQ reach housing and
identity, each effect exactly once; revocation gives the bed and the account back; suspension
keeps both (the default).

One cluster (roster, housing, identity as `nameko run` processes, SQLite, a private vhost) for
the whole module: the scenarios use different students.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import make_vhost
from services.catalog import SERVICES
from services.common.caller import Caller
from services.common.testing import caller
from tests.harness import Cluster, populate, wait_for

EVIDENCE = "文号 2026-001"
CLASS = "2023010101"  # populate() puts the first 50 students in this class
ACADEMIC_AFFAIRS = caller("academic_affairs")
COUNSELOR = caller("counselor", "classes", CLASS)
# kind → (the student's index in populate(), who applies it)
LEAVING: dict[str, tuple[int, Caller]] = {
    "withdraw": (0, ACADEMIC_AFFAIRS),
    "expel": (1, ACADEMIC_AFFAIRS),
    "death": (2, ACADEMIC_AFFAIRS),
    "transfer_out": (3, ACADEMIC_AFFAIRS),
    "graduate": (4, COUNSELOR),  # irregular graduation by the counselor (R18)
}
REVOKED = ("withdraw", "graduate")
SUSPENDED = 5
PROCESSES = ("roster", "housing", "identity")


class World:
    """The running cluster, its students, and RPC proxies acting as given staff callers."""

    def __init__(self, cluster: Cluster, numbers: list[str]) -> None:
        self.cluster = cluster
        self.numbers = numbers
        self.beds = {n: cluster.rpc("housing", "occupancy", n)["bed"]["label"] for n in numbers}
        self.changes: dict[str, int] = {}  # kind → roster's change id

    def as_(self, who: Caller) -> Any:
        return self.cluster.as_(who)

    # effects, read from each service's own database
    def count(self, service: str, query: str, **params: Any) -> int:
        return int(self.cluster.scalar(service, query, **params))

    def inbox(self, service: str) -> int:
        return self.count(service, "SELECT count(*) FROM inbox WHERE consumer = :c",
                          c=f"{service}.on_student_status_changed")

    def settled(self, changes: int) -> None:
        """Every status change published and consumed by housing and identity, every outbox empty."""
        wait_for(lambda: self.count("roster", "SELECT count(*) FROM status_changes") == changes
                 and self.inbox("housing") == changes and self.inbox("identity") == changes
                 and all(self.cluster.rpc(s, "health")["outbox_backlog"] == 0 for s in PROCESSES),
                 timeout=30, what=f"{changes} status changes applied everywhere")

    def audits(self, service: str, action: str, number: str) -> int:
        return self.count(service, "SELECT count(*) FROM audit_log WHERE action = :a AND target = :n",
                          a=action, n=number)

    def released(self, number: str) -> int:
        return self.count("housing", "SELECT count(*) FROM outbox WHERE event_type = 'housing.bed_released' "
                                     "AND body LIKE :n", n=f"%{number}%")

    def bed(self, number: str) -> str | None:
        bed = self.cluster.rpc("housing", "occupancy", number)["bed"]
        return bed["label"] if bed else None

    def active(self, number: str) -> bool:
        return bool(self.cluster.rpc("identity", "get_account", number)["active"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    amqp_uri, drop_vhost = make_vhost()
    workdir = tmp_path_factory.mktemp("status-changes")
    cluster = Cluster(amqp_uri, {name: f"sqlite:///{workdir}/{name}.sqlite3" for name in SERVICES}, workdir)
    try:
        cluster.prepare()
        cluster.start(*PROCESSES)
        yield World(cluster, [r["student_number"] for r in populate(cluster, 6)])
    finally:
        cluster.close()  # its caller proxies too
        drop_vhost()


@pytest.fixture(scope="module")
def left(world: World) -> World:
    """The five leaving kinds applied through roster's RPC, each by a role allowed to."""
    for kind, (index, who) in LEAVING.items():
        done = world.as_(who).roster.apply_status_change(world.numbers[index], kind, "2026-11-20",
                                                          f"{kind} 测试", evidence=EVIDENCE)
        assert done["applied"] is True
        world.changes[kind] = done["change_id"]
    world.settled(len(LEAVING))
    return world


def test_each_leaving_change_releases_the_bed_and_deactivates_the_account_once(left: World) -> None:
    statuses = {"withdraw": "withdrawn", "expel": "expelled", "death": "deceased",
                "transfer_out": "transferred_out", "graduate": "graduated"}
    for kind, (index, _) in LEAVING.items():
        number = left.numbers[index]
        student = left.cluster.rpc("roster", "get_student", number)
        assert (student["status"], student["left"]) == (statuses[kind], True), kind
        assert left.bed(number) is None, kind
        assert left.active(number) is False, kind
        # exactly once: one stay ended, by this change; one bed_released; one deactivation
        assert left.cluster.sql("housing", "SELECT end_reason, released_by_change_id FROM occupancies "
                                           "WHERE student_number = :n AND ended_at IS NOT NULL", n=number) == \
            [(statuses[kind], left.changes[kind])], kind
        assert left.released(number) == 1, kind
        assert left.audits("housing", "bed.release", number) == 1, kind
        assert left.audits("identity", "account.deactivate", number) == 1, kind
    # the students not concerned keep both
    assert left.bed(left.numbers[SUSPENDED]) == left.beds[left.numbers[SUSPENDED]]
    assert left.active(left.numbers[SUSPENDED]) is True


def test_revocation_gives_back_the_same_bed_and_the_account(left: World) -> None:
    for kind in REVOKED:
        index, who = LEAVING[kind]
        done = left.as_(who).roster.revoke_status_change(left.changes[kind], "误办，撤销")
        assert done["status"] == "enrolled"
    left.settled(len(LEAVING) + len(REVOKED))

    for kind in REVOKED:
        number = left.numbers[LEAVING[kind][0]]
        assert left.bed(number) == left.beds[number], kind
        assert left.active(number) is True, kind
        assert left.audits("housing", "bed.restore", number) == 1, kind
        assert left.audits("identity", "account.reactivate", number) == 1, kind
        assert left.released(number) == 1, kind  # the release only
        assert left.count("housing", "SELECT count(*) FROM occupancies WHERE student_number = :n "
                                     "AND ended_at IS NULL", n=number) == 1, kind
    # the others stay gone, and nobody is waiting for a bed
    for kind in set(LEAVING) - set(REVOKED):
        number = left.numbers[LEAVING[kind][0]]
        assert left.bed(number) is None and left.active(number) is False, kind
    assert left.cluster.rpc("housing", "restore_problems") == []
    held = left.cluster.rpc("housing", "beds_held", left.numbers)
    assert set(held) == {left.numbers[i] for i in (LEAVING["withdraw"][0], LEAVING["graduate"][0], SUSPENDED)}


def test_suspension_keeps_the_bed_and_the_account(world: World) -> None:
    number = world.numbers[SUSPENDED]
    before = world.count("roster", "SELECT count(*) FROM status_changes")
    done = world.as_(ACADEMIC_AFFAIRS).roster.apply_status_change(number, "suspend", "2026-11-20", "因病休学",
                                                                  evidence=EVIDENCE)
    world.settled(before + 1)
    assert world.cluster.sql("housing", "SELECT status, last_change_id FROM students WHERE student_number = :n",
                             n=number) == [("suspended", done["change_id"])]
    assert world.bed(number) == world.beds[number]
    assert world.active(number) is True
    assert world.released(number) == 0
    assert world.audits("identity", "account.deactivate", number) == 0
