"""Runs the real services as separate `nameko run` processes for cross-service tests.

Each `Cluster` has its own RabbitMQ vhost and its own databases (SQLite files in a temp
dir, or PostgreSQL URLs), migrates them with alembic and declares the topology exactly
as `make run` does, so tests exercise the system as deployed: processes, broker, outbox
relays, inboxes. Services can be stopped, started and killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, text
from stdnum.cn import ric

from services.catalog import SERVICES, all_service_classes
from services.common.caller import CONTEXT_KEY, Caller, system_caller
from services.common.migrate import upgrade
from services.common.topology import bindings_of, declare
from services.roster.tests.factories import cn_name

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001 - e.g. a service still starting
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last!r})")


class Cluster:
    def __init__(self, amqp_uri: str, db_urls: dict[str, str], workdir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.amqp_uri = amqp_uri
        self.db_urls = db_urls
        self.workdir = workdir
        self.extra_env = env or {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.engines: dict[str, Any] = {}
        self._proxies: dict[float, Any] = {}
        self._callers: dict[str, tuple[Any, Any]] = {}  # username → (runner, proxy) acting as that caller

    # --- set-up -------------------------------------------------------------------
    def prepare(self) -> Cluster:
        for name in SERVICES:
            upgrade(name, self.db_urls[name])
        declare(self.amqp_uri, bindings_of(all_service_classes()))
        return self

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({f"{n.upper()}_DATABASE_URL": u for n, u in self.db_urls.items()})
        env.update({"XUEJI_AMQP_URI": self.amqp_uri, "XUEJI_DATA_DIR": str(self.workdir),
                    "PYTHONPATH": str(ROOT), "XUEJI_RELAY_POLL": "0.2"})
        env.update(self.extra_env)
        return env

    # --- processes ----------------------------------------------------------------
    def start(self, *names: str, wait: bool = True) -> None:
        for name in names or tuple(SERVICES):
            log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", str(ROOT / "deploy/nameko.yaml"),
                 SERVICES[name]], cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        if wait:
            for name in names or tuple(SERVICES):
                wait_for(lambda n=name: self.rpc(n, "health", timeout=2)["status"] == "ok",
                         timeout=60, what=f"{name} ready")

    def start_replica(self, name: str, index: int = 2) -> str:
        """Another instance of `name` on the same broker and databases; key `name#index`."""
        key = f"{name}#{index}"
        log = open(self.workdir / f"{name}-{index}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[key] = subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", str(ROOT / "deploy/nameko.yaml"),
             SERVICES[name]], cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        return key

    def stop(self, *names: str) -> None:
        """SIGTERM (nameko stops gracefully), all at once; SIGKILL after 20 s."""
        stopping = [p for n in (names or tuple(self.procs)) if (p := self.procs.pop(n, None))]
        for proc in stopping:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in stopping:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill9(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        self.stop()
        for runner, _ in [*self._proxies.values(), *self._callers.values()]:
            runner.stop()
        self._proxies.clear()
        self._callers.clear()
        for engine in self.engines.values():
            engine.dispose()

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- talking to it ---------------------------------------------------------------
    def rpc(self, service: str, method: str, *args: Any, timeout: float = 30, **kwargs: Any) -> Any:
        """Call as the system caller over one long-lived proxy (one per timeout value)."""
        proxy = self._proxies.get(timeout)
        if proxy is None:
            ctx = {CONTEXT_KEY: system_caller("tests").to_header()}
            runner = ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, context_data=ctx, timeout=timeout)
            proxy = self._proxies[timeout] = (runner, runner.start())
        try:
            return getattr(proxy[1][service], method)(*args, **kwargs)
        except Exception:
            # A timed-out proxy may later receive the stale reply: start afresh.
            self._proxies.pop(timeout, None)
            proxy[0].stop()
            raise

    def as_(self, who: Caller) -> Any:
        """A long-lived proxy whose calls carry `who` as the caller (closed with the cluster)."""
        if who.username not in self._callers:
            runner = ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=30,
                                     context_data={CONTEXT_KEY: who.to_header()})
            self._callers[who.username] = (runner, runner.start())
        return self._callers[who.username][1]

    def sql(self, service: str, query: str, **params: Any) -> list[Any]:
        """Read a service's database directly, to check effects (tests only)."""
        if service not in self.engines:
            self.engines[service] = create_engine(self.db_urls[service])
        with self.engines[service].connect() as conn:
            return list(conn.execute(text(query), params))

    def scalar(self, service: str, query: str, **params: Any) -> Any:
        return self.sql(service, query, **params)[0][0]

    def publish_clearance(self, bodies: Iterable[dict[str, Any]], routing_key: str = "clearance.completed") -> int:
        """Publish as the clearance system does: persistent JSON, publisher confirms."""
        count = 0
        with Connection(self.amqp_uri, transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            exchange = Exchange("clearance.events", "topic", durable=True)
            for body in bodies:
                producer.publish(json.dumps(body), exchange=exchange, routing_key=routing_key,
                                 content_type="application/json", content_encoding="utf-8",
                                 delivery_mode=2)
                count += 1
        return count


# --- data -------------------------------------------------------------------------------
def national_id(n: int, gender: str) -> str:
    """A valid ID number, distinct for every n below 1.8 million (birth day × sequence)."""
    born = date(2000, 1, 1).toordinal() + n % 3650
    order = (n // 3650 % 500) * 2 + (1 if gender == "1" else 0)
    body = f"110101{date.fromordinal(born):%Y%m%d}{order:03d}"
    return body + ric.calc_check_digit(body + "0")


def student_rows(count: int, year: str = "2023") -> list[dict[str, Any]]:
    """`count` valid students, 50 per class, 99 classes per major, numbers by R6, alternating gender:
    full records as roster's `check_record` asks them (names 学生零零零零零…: a name holds no digits)."""
    rows = []
    for i in range(count):
        major, seat = divmod(i, 99 * 50)
        klass = f"{year}01{major + 1:02d}{seat // 50 + 1:02d}"
        gender = "1" if i % 2 == 0 else "2"
        nid = national_id(i, gender)
        rows.append({"student_number": f"{klass}{i % 50 + 1:02d}", "name": cn_name(i, 5),
                     "gender": gender, "birth_date": f"{nid[6:10]}-{nid[10:12]}-{nid[12:14]}",
                     "id_type": "1", "national_id": nid, "ethnicity": "01", "entry_month": f"{year}-09",
                     "class_code": klass})
    return rows


def populate(cluster: Cluster, count: int, bulk: bool = False) -> list[dict[str, Any]]:
    """Register `count` students, give each a bed (housing learns them from events).

    `bulk`: one `allocate_intake` places everybody instead of an `assign_bed` call per
    student (10,000 students: seconds instead of minutes; beds differ, not the outcome).
    """
    rows = student_rows(count)
    classes = sorted({r["class_code"] for r in rows})
    majors = sorted({c[4:8] for c in classes})
    cluster.rpc("roster", "upsert_org_units",
                [{"code": "01", "name": "计算机学院", "kind": "college"}]
                + [{"code": m, "name": f"计算机专业{m[2:]}", "kind": "major", "parent_code": "01"} for m in majors]
                + [{"code": c, "name": f"计科{c[2:4]}{c[6:8]}{c[-2:]}", "kind": "class", "parent_code": c[4:8]}
                   for c in classes])
    for i in range(0, count, 500):
        cluster.rpc("roster", "register_students", rows[i:i + 500], timeout=120)
    beds = []
    for building, policy, gender in (("B1", "M", "1"), ("B2", "F", "2")):
        wanted = sum(1 for r in rows if r["gender"] == gender)
        for b in range(wanted):
            beds.append({"building_code": building, "building_name": f"{building}号楼",
                         "gender_policy": policy, "room_no": f"{b // 4 + 101}", "capacity": 4,
                         "bed_no": f"{b % 4 + 1}"})
    for i in range(0, len(beds), 1000):
        cluster.rpc("housing", "create_beds", beds[i:i + 1000], timeout=120)
    settle = max(120.0, count / 20)  # consumers apply one registration per transaction
    wait_for(lambda: cluster.rpc("housing", "health")["students_known"] >= count, timeout=settle,
             what="housing knows every student")
    if bulk:
        placed = cluster.rpc("housing", "allocate_intake", {"entry_year": rows[0]["class_code"][:4]}, True,
                             timeout=600)["placed"]
        assert placed == count, f"allocate_intake placed {placed} of {count}"
    else:
        labels = {"1": iter(b for b in _labels(cluster, "B1")), "2": iter(b for b in _labels(cluster, "B2"))}
        for r in rows:
            cluster.rpc("housing", "assign_bed", r["student_number"], next(labels[r["gender"]]))
    wait_for(lambda: cluster.rpc("identity", "health")["accounts"] >= count, timeout=settle,
             what="identity has every account")
    return rows


def _labels(cluster: Cluster, building: str) -> list[str]:
    return [r[0] for r in cluster.sql(
        "housing", "SELECT b.label FROM beds b JOIN rooms r ON r.id = b.room_id "
                   "WHERE r.building_code = :b ORDER BY b.id", b=building)]


def clearance_body(student_number: str, event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or str(uuid.uuid4()), "occurred_at": "2027-06-28T10:15:00+08:00",
            "student_number": student_number, "national_id_number": None, "outcome": "graduated",
            "clearance_batch": "2027-06", "items": {"library": "ok"}}
