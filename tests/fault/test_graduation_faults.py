"""The long fault suite (issue 10): a whole graduation under each fault, on private infra.

Every scenario graduates `XUEJI_FAULT_STUDENTS` (default 10,000) students — clearance
events → roster → identity, housing, aid, transfer — while one fault happens:
kill -9 of each service (then restarted), a RabbitMQ restart, two instances of housing
and identity at once (one killed -9 half-way), a frozen PostgreSQL (SIGSTOP/SIGCONT).
A few poison events are published on purpose. Then: every bed released once, every
account deactivated once, every read copy left once, no outbox row unpublished, no
message ready or unacknowledged, and dead letters exactly the poison ones.

The broker and PostgreSQL are the suite's own (`private_infra.py`): it restarts and
freezes them. The students are populated once per back end into a template (SQLite
files / a PostgreSQL template database) that each scenario copies.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eventlet
import eventlet.event
import pytest
from kombu import Connection, Exchange

from services.catalog import SERVICES, all_service_classes
from services.common.deadletters import list_dead_letters
from services.common.topology import bindings_of
from tests.fault.private_infra import PrivateBroker, PrivatePostgres
from tests.fault.report import record
from tests.harness import Cluster, clearance_body, populate, wait_for

pytestmark = [pytest.mark.fault, pytest.mark.slow_fault, pytest.mark.timeout(3600)]

STUDENTS = int(os.environ.get("XUEJI_FAULT_STUDENTS", "10000"))
POISON = 3
CATCH_UP_SECONDS = float(os.environ.get("XUEJI_FAULT_CATCH_UP", "900"))
QUEUES = [b.queue for b in bindings_of(all_service_classes())]
STATUS_QUEUES = [q for q in QUEUES if q.startswith("evt-roster-student.status_changed--")]
# Queries of "how many students has this service applied the graduation to" (distinct).
APPLIED = {
    "roster": "SELECT count(DISTINCT student_number) FROM status_changes",
    "housing": "SELECT count(DISTINCT student_number) FROM occupancies WHERE ended_at IS NOT NULL",
    "identity": "SELECT count(*) FROM accounts WHERE role = 'student' AND active = :f",
    "aid": "SELECT count(*) FROM students WHERE \"left\" = :t AND stop_instalments = :t",
    "transfer": "SELECT count(*) FROM students WHERE \"left\" = :t",
}
# Rows that would exist twice if an event were applied twice.
DOUBLES = {
    "roster": "SELECT count(*) - count(DISTINCT student_number) FROM status_changes",
    "roster outbox": "SELECT count(*) - :n FROM outbox WHERE event_type = 'student.status_changed'",
    "housing": "SELECT count(*) - count(DISTINCT student_number) FROM occupancies WHERE ended_at IS NOT NULL",
    "housing outbox": "SELECT count(*) - :n FROM outbox WHERE event_type = 'housing.bed_released'",
    "identity": "SELECT count(*) - count(DISTINCT target) FROM audit_log WHERE action = 'account.deactivate'",
}


# --- templates: the students, populated once per back end --------------------------------
@dataclass
class Template:
    backend: str
    numbers: list[str]
    sqlite_dir: Path | None = None
    pg_names: dict[str, str] = field(default_factory=dict)


def _drained(broker: PrivateBroker, vhost: str) -> bool:
    """No message ready or unacknowledged in any queue (dead-letter queues are checked apart)."""
    return all(ready == 0 and unacked == 0 for queue, (ready, unacked, _) in broker.queues(vhost).items()
               if not queue.endswith(".dead"))


def _all_outboxes_empty(cluster: Cluster) -> bool:
    return all(cluster.scalar(s, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
               for s in SERVICES)


@pytest.fixture(scope="session")
def templates(private_broker: PrivateBroker, private_postgres: PrivatePostgres,
              tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Template]:
    made: dict[str, Template] = {}

    def build(backend: str) -> Template:
        if backend in made:
            return made[backend]
        workdir = tmp_path_factory.mktemp(f"template-{backend}")
        if backend == "postgresql":
            names = {s: private_postgres.create_database(f"tmpl_{s}") for s in SERVICES}
            urls = {s: private_postgres.url(n) for s, n in names.items()}
        else:
            names, urls = {}, {s: f"sqlite:///{workdir}/{s}.sqlite3" for s in SERVICES}
        vhost, uri = private_broker.add_vhost()
        cluster = Cluster(uri, urls, workdir).prepare()
        try:
            cluster.start()
            started = time.monotonic()
            numbers = [r["student_number"] for r in populate(cluster, STUDENTS, bulk=True)]
            for svc in ("aid", "transfer"):
                wait_for(lambda s=svc: cluster.scalar(s, "SELECT count(*) FROM students") == STUDENTS,
                         timeout=max(300, STUDENTS / 10), what=f"{svc} knows every student")
            wait_for(lambda: _drained(private_broker, vhost) and _all_outboxes_empty(cluster), timeout=600,
                     what="template settled")
            print(f"\ntemplate {backend}: {STUDENTS} students populated in {time.monotonic() - started:.0f} s")
        finally:
            cluster.close()
            private_broker.delete_vhost(vhost)
        if backend == "sqlite":
            for s in SERVICES:  # fold the WAL into the file, so copying the file copies everything
                conn = sqlite3.connect(workdir / f"{s}.sqlite3")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()
        made[backend] = Template(backend, numbers, workdir if backend == "sqlite" else None, names)
        return made[backend]

    return build


# --- one graduation ------------------------------------------------------------------------
@dataclass
class Graduation:
    cluster: Cluster
    broker: PrivateBroker
    postgres: PrivatePostgres
    vhost: str
    numbers: list[str]
    poison_ids: list[str] = field(default_factory=list)
    # Publishing stops after this share until `resume` is sent (the broker fault starts there).
    hold_at: float | None = None
    done_at_fault: int | None = None
    resume: Any = field(default_factory=eventlet.event.Event)
    started: float = field(default_factory=time.monotonic)  # after the template, before the cluster

    @property
    def n(self) -> int:
        return len(self.numbers)

    def applied(self, service: str) -> int:
        return self.cluster.scalar(service, APPLIED[service], f=False, t=True)

    def mark_fault(self) -> None:
        """Graduations every service had applied when the fault began (shows it hit mid-run)."""
        self.done_at_fault = min(self.applied(s) for s in SERVICES)

    def everything_applied(self) -> bool:
        return all(self.applied(s) == self.n for s in SERVICES)

    def publish(self) -> None:
        """The poison first (so it meets the busy consumers), then every clearance event.

        As the clearance system must: persistent, confirmed, and a message whose confirm did
        not arrive (the broker went away) is sent again after reconnecting — at least once,
        so a fault during publishing may double a delivery, never lose one.
        """
        self.poison_ids = [f"poison-{uuid.uuid4()}" for _ in range(POISON)]
        roster = Exchange("roster.events", "topic", durable=True)
        clearance = Exchange("clearance.events", "topic", durable=True)
        messages = [(roster, "student.status_changed",  # an envelope without the fields every event has
                     {"event_id": p, "type": "student.status_changed", "payload": "not a status change"})
                    for p in self.poison_ids]
        messages += [(clearance, "clearance.completed", clearance_body(n)) for n in self.numbers]
        sent = 0
        hold = None if self.hold_at is None else POISON + int(self.hold_at * self.n)
        while sent < len(messages):
            try:
                with Connection(self.cluster.amqp_uri, transport_options={"confirm_publish": True},
                                connect_timeout=5) as conn:
                    producer = conn.Producer()
                    while sent < len(messages):
                        if sent == hold:
                            self.resume.wait()
                            hold = None
                        exchange, key, body = messages[sent]
                        producer.publish(json.dumps(body), exchange=exchange, routing_key=key,
                                         content_type="application/json", content_encoding="utf-8",
                                         delivery_mode=2)
                        sent += 1
            except Exception:  # noqa: BLE001 - broker away: reconnect and send the unconfirmed one again
                time.sleep(0.5)

    def wait_progress(self, service: str, share: float = 0.2) -> int:
        """Until `service` has applied `share` of the graduation (the fault then hits mid-run)."""
        return wait_for(lambda: (done := self.applied(service)) >= share * self.n and done, timeout=600,
                        interval=0.05, what=f"{service} under way")

    def doubled(self) -> int:
        return sum(max(0, self.cluster.scalar(svc.split()[0], q, n=self.n)) for svc, q in DOUBLES.items())

    def lost(self) -> int:
        return max(self.n - self.applied(s) for s in SERVICES)

    def dead_letters(self) -> list[tuple[str, str | None]]:
        return sorted((d.queue, d.event_id) for d in list_dead_letters(self.cluster.amqp_uri, QUEUES))


@pytest.fixture
def graduation(templates: Callable[[str], Template], private_broker: PrivateBroker,
               private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[Callable[..., Graduation]]:
    """Factory: `graduation(backend)` → a started cluster over a copy of the populated template."""
    opened: list[tuple[Cluster, str]] = []

    def make(backend: str = "sqlite") -> Graduation:
        template = templates(backend)
        started = time.monotonic()
        if backend == "postgresql":
            urls = {s: private_postgres.url(private_postgres.create_database(f"grad_{s}", template=name))
                    for s, name in template.pg_names.items()}
        else:
            assert template.sqlite_dir is not None
            for s in SERVICES:
                shutil.copyfile(template.sqlite_dir / f"{s}.sqlite3", tmp_path / f"{s}.sqlite3")
            urls = {s: f"sqlite:///{tmp_path}/{s}.sqlite3" for s in SERVICES}
        vhost, uri = private_broker.add_vhost()
        cluster = Cluster(uri, urls, tmp_path).prepare()
        opened.append((cluster, vhost))
        cluster.start()
        return Graduation(cluster, private_broker, private_postgres, vhost, template.numbers, started=started)

    yield make
    for cluster, vhost in opened:
        cluster.close()
        private_broker.delete_vhost(vhost)


# --- the faults -------------------------------------------------------------------------------
def kill_and_restart(victim: str) -> Callable[[Graduation], None]:
    def fault(g: Graduation) -> None:
        g.wait_progress(victim)
        g.mark_fault()
        g.cluster.kill9(victim)
        time.sleep(1)
        g.cluster.start(victim, wait=False)  # the fault ends here; starting up is part of recovering
    return fault


def restart_broker(g: Graduation) -> None:
    """The broker goes away with the graduation a third published and the publisher mid-stream.

    rabbitmqctl alone takes seconds to act on a busy machine, long enough for a whole
    graduation to finish: the publisher is held at a third and let go once the broker is
    stopped, so two thirds of the events meet a stopped broker (publisher and every service
    reconnect), while the first third is still on its way through the consumers.
    """
    g.wait_progress("roster", share=0.5 * (g.hold_at or 0))
    g.mark_fault()
    g.broker.ctl("stop_app")
    g.resume.send()
    time.sleep(3)
    g.broker.ctl("start_app")
    g.broker.await_startup()


def replicas_one_killed(g: Graduation) -> None:
    g.wait_progress("housing")
    g.mark_fault()
    g.cluster.kill9("housing#2")  # its unacknowledged batch goes back to the queue


def pause_postgres(g: Graduation) -> None:
    g.wait_progress("roster")
    g.mark_fault()
    g.postgres.pause(5)


@dataclass(frozen=True)
class Scenario:
    fault: str
    backend: str
    inject: Callable[[Graduation], None]
    replicas: tuple[str, ...] = ()
    hold_at: float | None = None


SCENARIOS = [
    *(Scenario(f"kill -9 {svc}", "sqlite", kill_and_restart(svc))
      for svc in ("roster", "housing", "identity", "aid", "transfer")),
    Scenario("RabbitMQ restart", "sqlite", restart_broker, hold_at=1 / 3),
    Scenario("2× housing+identity, kill -9 one", "postgresql", replicas_one_killed, ("housing", "identity")),
    Scenario("PostgreSQL paused 5 s", "postgresql", pause_postgres),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.fault for s in SCENARIOS])
def test_graduation_survives(scenario: Scenario, graduation: Callable[..., Graduation]) -> None:
    g = graduation(scenario.backend)
    for name in scenario.replicas:
        g.cluster.start_replica(name)
    if scenario.replicas:
        wanted = {q for q in STATUS_QUEUES if q.split("--")[1].split(".")[0] in scenario.replicas}
        wait_for(lambda: all(g.broker.queues(g.vhost)[q][2] == 2 for q in wanted), timeout=90,
                 what="two consumers on each replicated queue")
    # Published while the fault happens: publishing 10,000 confirmed messages takes a while.
    g.hold_at = scenario.hold_at
    publisher = eventlet.spawn(g.publish)
    scenario.inject(g)
    fault_ended = time.monotonic()
    publisher.wait()
    caught_up = True
    try:
        wait_for(g.everything_applied, timeout=CATCH_UP_SECONDS, interval=0.25, what="every graduation applied")
    except AssertionError:
        caught_up = False
    recovered = time.monotonic() - fault_ended
    if caught_up:
        wait_for(lambda: _drained(g.broker, g.vhost) and _all_outboxes_empty(g.cluster), timeout=120,
                 what="queues drained and outboxes published")
    dead = g.dead_letters()
    row = {"fault": scenario.fault, "db": scenario.backend, "events": g.n, "done at fault": g.done_at_fault,
           "lost": g.lost(),
           "doubled": g.doubled(), "dead letters": f"{len(dead)} (poison {POISON}×{len(STATUS_QUEUES)})",
           "recover s": f"{recovered:.1f}" if caught_up else f">{recovered:.0f}",
           "scenario s": f"{time.monotonic() - g.started:.0f}"}
    record(row)

    assert caught_up, f"not every graduation applied in {CATCH_UP_SECONDS} s: {row}"
    assert row["lost"] == 0 and row["doubled"] == 0, row
    for service in SERVICES:
        assert g.cluster.scalar(service, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0, service
    stuck = {q: (r, u) for q, (r, u, _) in g.broker.queues(g.vhost).items()
             if not q.endswith(".dead") and (r or u)}
    assert stuck == {}, f"messages left ready/unacknowledged: {stuck}"
    # Dead letters: exactly the poison events, once in each consumer of student.status_changed.
    assert dead == sorted((q, p) for q in STATUS_QUEUES for p in g.poison_ids)
    # Each account was closed by one event, each bed released by one change (no second effect).
    assert g.cluster.scalar("identity", "SELECT count(*) FROM audit_log WHERE action = 'account.deactivate'") == g.n
    assert g.cluster.scalar("housing", "SELECT count(*) FROM occupancies WHERE ended_at IS NULL") == 0

