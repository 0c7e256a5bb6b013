"""Counts for the dashboard and the home page (issue 9) on SQLite and PostgreSQL: transfers by
direction and state match `list_transfers` with that filter; each role's approval queues and the
ones with ≤ 3 working days left match what the approval page shows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from services.common.caller import Caller, Scope
from services.common.db import Database
from services.common.errors import Forbidden
from services.transfer import summaries, transfers
from services.transfer.adapters.orm import Transfer
from services.transfer.domain import workflow as wf

OFFICE = Caller("u1", "1000001", "student_affairs", Scope("institution"))
AUTHORITY = Caller("u2", "1000002", "authority", Scope("institution"))
COUNSELOR = Caller("u3", "1000003", "counselor", Scope("classes", ("2023010101",)))
NOW = datetime.now(UTC)


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("transfer")


def add(db: Database, direction: str, state: str, deadline: date | None) -> None:
    """A transfer row as the workflow leaves it waiting in `state` (the workflow itself is tested elsewhere)."""
    with db.transaction() as s:
        s.add(Transfer(id=str(uuid.uuid4()), direction=direction, peer_code="4211000001", state=state,
                       stage=state if state in wf.STAGES else None, stage_started_on=NOW.date(),
                       stage_deadline=deadline, transfer_kind=wf.INTRA_PROVINCE, national_student_id="G1",
                       name="王小红", gender="2", birth_date="2005-01-01", id_type="1", id_number="X",
                       reason="随父母工作调动", filed_by="1000001", created_at=NOW, updated_at=NOW))


def test_counts_by_stage_and_the_approval_queues(db: Database) -> None:
    today = wf.campus_day(NOW)
    soon, later = today + timedelta(days=1), today + timedelta(days=60)
    add(db, wf.OUTFLOW, wf.OUTFLOW_SCHOOL, soon)
    add(db, wf.OUTFLOW, wf.OUTFLOW_SCHOOL, later)
    add(db, wf.OUTFLOW, wf.OUTFLOW_AUTHORITY, soon)
    add(db, wf.INFLOW, wf.INFLOW_AUTHORITY, later)
    add(db, wf.INFLOW, wf.OUTFLOW_SCHOOL, soon)  # the peer's stage: nobody here decides it
    add(db, wf.INFLOW, wf.COMPLETED, None)

    result = summaries.counts_by_stage(db, OFFICE)
    assert result["total"] == 6
    for row in result["rows"]:
        listed = transfers.list_transfers(db, OFFICE, row["direction"], row["state"], "", 1, 100)
        assert listed["total"] == row["count"], row
    assert {(r["direction"], r["state"]): r["count"] for r in result["rows"]} == {
        (wf.INFLOW, wf.INFLOW_AUTHORITY): 1, (wf.INFLOW, wf.OUTFLOW_SCHOOL): 1, (wf.INFLOW, wf.COMPLETED): 1,
        (wf.OUTFLOW, wf.OUTFLOW_SCHOOL): 2, (wf.OUTFLOW, wf.OUTFLOW_AUTHORITY): 1}
    assert result["rows"][0]["direction_label"] == "转入"

    assert summaries.home_counts(db, OFFICE) == {"transfer_approvals": 2, "transfer_due_soon": 1}
    assert summaries.home_counts(db, AUTHORITY) == {"transfer_approvals": 2, "transfer_due_soon": 1}
    # The same numbers as the approval page's queues (one per stage the role decides).
    for who in (OFFICE, AUTHORITY):
        queues = [transfers.list_transfers(db, who, o["direction"], o["stage"], "", 1, 100)
                  for o in transfers.my_stages(who)]
        items = [i for q in queues for i in q["items"]]
        assert len(items) == summaries.home_counts(db, who)["transfer_approvals"]
        assert sum(1 for i in items if i["days_left"] is not None and i["days_left"] <= 3) == \
            summaries.home_counts(db, who)["transfer_due_soon"]
    assert summaries.home_counts(db, COUNSELOR) == {}
    with pytest.raises(Forbidden):
        summaries.counts_by_stage(db, COUNSELOR)
