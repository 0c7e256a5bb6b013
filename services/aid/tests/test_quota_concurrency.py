"""Quota enforcement under concurrent approvals (A2), each approver (one application, or a `review_many`
batch) with its own engine and connection, all released at once — never more places or funds than
allocated, whether places, funds or both are limited. PostgreSQL: green threads (psycogreen makes
every query yield, so the transactions interleave at each statement, as in the nameko services).
SQLite: real OS threads (its calls never yield), contending for the database's write lock."""

from __future__ import annotations

from collections.abc import Callable

import eventlet
import eventlet.event
import eventlet.patcher
import pytest
from sqlalchemy import select

from services.aid import applications
from services.aid.adapters.orm import Application, QuotaRow
from services.aid.tests.flow import COUNSELOR, allocate, apply, enrol, identify, number
from services.common.db import Database
from services.common.errors import Conflict

# The root conftest monkey-patches threading; SQLite's writers must be truly parallel threads.
real_threading = eventlet.patcher.original("threading")

PLACES = 4
APPLICANTS = 12


BATCH = 3  # `review_many` batches: four of them race with each other


@pytest.mark.parametrize(("places", "funds"), [(PLACES, None), (PLACES, 3 * 3700), (None, 3 * 3700)],
                         ids=["places", "places+funds", "funds-only"])
@pytest.mark.parametrize("how", ["single", "batches"])
def test_concurrent_approvals_never_over_allocate(migrated_db: Callable[[str], Database], places: int | None,
                                                  funds: int | None, how: str) -> None:
    db = migrated_db("aid")
    numbers = [number(i) for i in range(1, APPLICANTS + 1)]
    enrol(db, *numbers)
    for serial, n in enumerate(numbers, start=1):
        identify(db, n, "困难", serial=serial)
    allocate(db, "GJZXJ", places, funds)
    ids = [apply(db, n)["id"] for n in numbers]

    outcomes: list[str] = []
    lock = real_threading.Lock()
    start = real_threading.Event() if db.is_sqlite else eventlet.event.Event()

    def approve(app_ids: list[int]) -> None:
        own = Database(db.url)  # its own engine and connection: a separate writer
        try:
            start.wait()
            if how == "single":
                applications.review_application(own, COUNSELOR, app_ids[0], "approve")
                results = ["ok"]
            else:
                done = applications.review_many(own, COUNSELOR, app_ids, "approve")
                results = ["ok"] * done["done"] + ["full" if "已用完" in r["message"] else r["message"]
                                                   for r in done["refused"]]
        except Conflict:
            results = ["full"]
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results = [repr(exc)]
        finally:
            own.dispose()
        with lock:
            outcomes.extend(results)

    size = 1 if how == "single" else BATCH
    groups = [ids[i:i + size] for i in range(0, len(ids), size)]
    if db.is_sqlite:
        threads = [real_threading.Thread(target=approve, args=(g,)) for g in groups]
        for t in threads:
            t.start()
        start.set()
        for t in threads:
            t.join(60)
    else:
        pool = eventlet.GreenPool(len(groups))
        for g in groups:
            pool.spawn(approve, g)
        eventlet.sleep(0)
        start.send()
        pool.waitall()
    expected = PLACES if funds is None else 3
    assert sorted(outcomes) == ["full"] * (APPLICANTS - expected) + ["ok"] * expected
    with db.reading() as s:
        used = {q.level: (q.used_places, q.used_funds) for q in s.scalars(select(QuotaRow))}
        held = s.scalars(select(Application).where(Application.quota_taken.is_(True))).all()
    assert used == {level: (expected, expected * 3700) for level in ("programme", "college", "class")}
    assert len(held) == expected
