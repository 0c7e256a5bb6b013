"""Benchmarks of housing's bulk steps, each beside a plain SQL bulk update of the same rows
in the same run (`make bench`; sizes by environment):

- automatic allocation of an intake (`XUEJI_BENCH_INTAKE`, default 10,000) into
  `XUEJI_BENCH_BEDS` (default 12,000) beds, rules checked, history and audit written;
- a bulk move of `XUEJI_BENCH_MOVES` (default 5,000) students as one all-or-nothing step;
- the bulk check-out of `XUEJI_HOUSING_E2E_STUDENTS` (default 5,000) graduates while their
  graduation events arrive, end to end over RabbitMQ.

The baseline writes only what the use case must (beds' occupants, stays) with one
executemany per statement, no rules, no audit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text

from services.common.caller import system_caller
from services.common.db import Database
from services.housing import handlers, stays
from services.housing.adapters.orm import Bed, Occupancy, Student
from tests.harness import Cluster
from tests.integration.test_housing_checkout import bulk_check_out_during_graduation

pytestmark = pytest.mark.perf

INTAKE = int(os.environ.get("XUEJI_BENCH_INTAKE", "10000"))
BEDS = int(os.environ.get("XUEJI_BENCH_BEDS", "12000"))
MOVES = int(os.environ.get("XUEJI_BENCH_MOVES", "5000"))
CENTRE = system_caller("bench")


def seed(db: Database) -> list[str]:
    """BEDS beds (half men's, half women's buildings, rooms of 4) and INTAKE new students."""
    per_gender = BEDS // 2
    beds = [{"building_code": f"{g}{n // 2000}", "building_name": f"{g}{n // 2000}号楼", "gender_policy": g,
             "room_no": str(1000 + (n % 2000) // 4), "capacity": 4, "bed_no": str(n % 4 + 1)}
            for g in ("M", "F") for n in range(per_gender)]
    for i in range(0, len(beds), 5000):
        handlers.create_beds(db, CENTRE, beds[i:i + 5000])
    now = datetime.now(UTC)
    students = [{"student_number": f"2026{i // 1000 + 1:02d}{i // 40 % 25 + 1:02d}{i % 40 + 1:04d}",
                 "name": f"新生{i:05d}", "gender": "1" if i % 2 == 0 else "2",
                 "college_code": f"{i // 1000 + 1:02d}", "class_code": f"2026{i // 1000 + 1:02d}{i // 40 % 25 + 1:02d}",
                 "status": "enrolled", "left": False, "last_change_id": None, "updated_at": now}
                for i in range(INTAKE)]
    with db.transaction() as s:
        s.execute(insert(Student), students)
    return [st["student_number"] for st in students]


def placements(db: Database) -> dict[str, int]:
    with db.reading() as s:
        return {occupant: bed_id for occupant, bed_id in s.execute(
            select(Bed.occupant, Bed.id).where(Bed.occupant.is_not(None)))}


def raw_assign(db: Database, pairs: dict[str, int], vacate: list[int]) -> float:
    """The plain SQL baseline: free `vacate` beds, then fill beds by id, record stays."""
    now = datetime.now(UTC)
    start = time.perf_counter()
    with db.transaction() as s:
        conn = s.connection()
        if vacate:
            conn.execute(text("UPDATE occupancies SET ended_at = :now, end_reason = 'moved' "
                              "WHERE bed_id = :bed AND ended_at IS NULL"), [{"now": now, "bed": b} for b in vacate])
            conn.execute(text("UPDATE beds SET occupant = NULL, occupied_since = NULL WHERE id = :bed"),
                         [{"bed": b} for b in vacate])
        conn.execute(text("UPDATE beds SET occupant = :n, occupied_since = :now WHERE id = :bed"),
                     [{"n": n, "now": now, "bed": b} for n, b in pairs.items()])
        conn.execute(insert(Occupancy), [{"bed_id": b, "student_number": n, "started_at": now}
                                         for n, b in pairs.items()])
    return time.perf_counter() - start


def reset(db: Database) -> None:
    with db.transaction() as s:
        s.execute(text("DELETE FROM occupancies"))
        s.execute(text("UPDATE beds SET occupant = NULL, occupied_since = NULL"))


def report(what: str, count: int, use_case: float, baseline: float) -> None:
    print(f"\n{what}: {count} students, use case {use_case:.2f} s ({count / use_case:.0f}/s), "
          f"plain SQL {baseline:.2f} s ({count / baseline:.0f}/s), ratio {baseline / use_case:.2f}")


@pytest.mark.timeout(1800)
def test_allocation_and_bulk_move(migrated_db: Callable[[str], Database], db_backend: str) -> None:
    db = migrated_db("housing")
    numbers = seed(db)

    start = time.perf_counter()
    result = stays.allocate_intake(db, CENTRE, {"entry_year": "2026"}, apply=True)
    allocation = time.perf_counter() - start
    assert result["placed"] == min(INTAKE, BEDS) and result["applied"]
    placed = placements(db)
    reset(db)
    report(f"[{db_backend}] automatic allocation into {BEDS} beds", len(placed), allocation,
           raw_assign(db, placed, []))

    # Rotate MOVES students among their own beds (men among men's beds, women among women's).
    gender = {n: "1" if i % 2 == 0 else "2" for i, n in enumerate(numbers)}
    movers = [n for n in numbers if n in placed][:MOVES]
    rows = []
    for g in ("1", "2"):
        group = [n for n in movers if gender[n] == g]
        labels = bed_labels(db, [placed[n] for n in group])
        rows += [{"student_number": n, "target": labels[(i + 1) % len(group)]} for i, n in enumerate(group)]
    start = time.perf_counter()
    moved = stays.move_many(db, CENTRE, rows)["moved"]
    bulk_move = time.perf_counter() - start
    assert moved == len(rows)
    after = placements(db)
    restore(db, placed)
    report(f"[{db_backend}] bulk move as one step", moved, bulk_move,
           raw_assign(db, {n: after[n] for n in movers}, [placed[n] for n in movers]))


def bed_labels(db: Database, ids: list[int]) -> list[str]:
    with db.reading() as s:
        by_id = dict(s.execute(select(Bed.id, Bed.label).where(Bed.id.in_(ids))).all())
    return [by_id[i] for i in ids]


def restore(db: Database, placed: dict[str, int]) -> None:
    """Everyone back where allocation placed them (plain SQL, not timed)."""
    reset(db)
    now = datetime.now(UTC)
    with db.transaction() as s:
        conn = s.connection()
        conn.execute(text("UPDATE beds SET occupant = :n, occupied_since = :now WHERE id = :bed"),
                     [{"n": n, "now": now, "bed": b} for n, b in placed.items()])
        conn.execute(insert(Occupancy), [{"bed_id": b, "student_number": n, "started_at": now}
                                         for n, b in placed.items()])


@pytest.mark.timeout(3600)
def test_bulk_check_out_of_a_cohort_while_graduation_events_arrive(make_cluster: Callable[..., Cluster],
                                                                   fresh_amqp_uri: str) -> None:
    count = int(os.environ.get("XUEJI_HOUSING_E2E_STUDENTS", "5000"))
    cluster = make_cluster(fresh_amqp_uri, "postgresql")
    cluster.start("roster", "housing", "identity")
    settled = bulk_check_out_during_graduation(cluster, count)
    print(f"\nbulk check-out of {count} graduates while half of them graduate: {settled:.1f} s until every bed "
          f"is released once and every event consumed ({count / settled:.0f} students/s)")
