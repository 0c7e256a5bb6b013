"""Quota enforcement under concurrent approvals (A2), each approver with its own engine and connection,
all released at once — never more places than allocated. PostgreSQL: green threads (psycogreen makes
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


@pytest.mark.parametrize("funds", [None, 3 * 3700])
def test_concurrent_approvals_never_over_allocate(migrated_db: Callable[[str], Database],
                                                  funds: int | None) -> None:
    db = migrated_db("aid")
    numbers = [number(i) for i in range(1, APPLICANTS + 1)]
    enrol(db, *numbers)
    for serial, n in enumerate(numbers, start=1):
        identify(db, n, "困难", serial=serial)
    allocate(db, "GJZXJ", PLACES, funds)
    ids = [apply(db, n)["id"] for n in numbers]

    outcomes: list[str] = []
    lock = real_threading.Lock()
    start = real_threading.Event() if db.is_sqlite else eventlet.event.Event()

    def approve(app_id: int) -> None:
        own = Database(db.url)  # its own engine and connection: a separate writer
        try:
            start.wait()
            applications.review_application(own, COUNSELOR, app_id, "approve")
            result = "ok"
        except Conflict:
            result = "full"
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            result = repr(exc)
        finally:
            own.dispose()
        with lock:
            outcomes.append(result)

    if db.is_sqlite:
        threads = [real_threading.Thread(target=approve, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        start.set()
        for t in threads:
            t.join(60)
    else:
        pool = eventlet.GreenPool(APPLICANTS)
        for i in ids:
            pool.spawn(approve, i)
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
