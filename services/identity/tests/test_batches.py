"""Status changes applied as a batch (one transaction, all or none)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.db import Database
from services.common.errors import NotFound
from services.common.models import InboxRecord
from services.identity import handlers
from services.identity.adapters.orm import Account
from services.identity.tests.factories import registered, status_changed

A, B = "202301010101", "202301010103"


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("identity")
    for number in (A, B):
        handlers.on_student_registered(database, registered(number))
    return database


def active(db: Database, number: str) -> bool:
    with db.reading() as s:
        row = s.get(Account, number)
        assert row is not None
        return row.active


def inbox(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(InboxRecord)
                        .where(InboxRecord.consumer == "identity.on_student_status_changed")) or 0


def test_a_batch_deactivates_and_reactivates_in_order(db: Database) -> None:
    leave_a = status_changed(A, 3, "graduated", left=True)
    handlers.on_student_status_changed(
        db, leave_a, leave_a,
        status_changed(B, 5, "graduated", left=True), status_changed(B, 6, "enrolled", left=False, revokes=5))
    assert (active(db, A), active(db, B)) == (False, True)
    assert inbox(db) == 3


def test_one_unknown_student_rolls_the_whole_batch_back(db: Database) -> None:
    # The entrypoint then applies each event alone (services/common/entrypoints.py).
    with pytest.raises(NotFound):
        handlers.on_student_status_changed(
            db, status_changed(A, 3, "graduated", left=True), status_changed("202301019999", 4, "graduated"))
    assert active(db, A) and inbox(db) == 0
    handlers.on_student_status_changed(db, status_changed(A, 3, "graduated", left=True))
    assert not active(db, A)
