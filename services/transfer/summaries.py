"""Counts for the dashboard and the home page (issue 9).

`counts_by_stage` groups transfers by direction and state (a waiting state is named after the
stage it waits for), so a bar leads to `list_transfers(direction, state)` with the same rows.
`home_counts` counts the approval queues of the caller's role (`wf.stages_decided_by`) and
how many of them have ≤ `DUE_SOON_DAYS` working days left, as the approval page shows them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from services.common.caller import Caller
from services.common.db import Database
from services.transfer.adapters.orm import Transfer
from services.transfer.domain import workflow as wf
from services.transfer.transfers import VIEW_ROLES, _calendar, _days_left

DUE_SOON_DAYS = 3


def counts_by_stage(db: Database, caller: Caller) -> dict[str, Any]:
    caller.require_role(*VIEW_ROLES)
    with db.reading() as s:
        rows = s.execute(select(Transfer.direction, Transfer.state, func.count())
                         .group_by(Transfer.direction, Transfer.state)).all()
    order = {state: i for i, state in enumerate(wf.STATES)}
    rows = sorted(rows, key=lambda r: (wf.DIRECTIONS.index(r[0]) if r[0] in wf.DIRECTIONS else 9,
                                       order.get(r[1], 99)))
    return {"rows": [{"direction": d, "direction_label": wf.DIRECTION_LABELS.get(d, d), "state": state,
                      "state_label": wf.STATE_LABELS.get(state, state), "count": n} for d, state, n in rows],
            "states": [{"state": state, "label": wf.STATE_LABELS.get(state, state)} for state in wf.STATES],
            "total": sum(n for _, _, n in rows)}


def home_counts(db: Database, caller: Caller) -> dict[str, int]:
    if caller.role not in VIEW_ROLES:
        return {}
    queues = wf.stages_decided_by(caller.role)
    if not queues:
        return {"transfer_approvals": 0, "transfer_due_soon": 0}
    today = wf.campus_day(datetime.now(UTC))
    waiting = or_(*(and_(Transfer.direction == d, Transfer.state == stage) for d, stage in queues))
    with db.reading() as s:
        rows = s.scalars(select(Transfer).where(waiting)).all()
        calendar = _calendar(s)
        left = [_days_left(t, calendar, today) for t in rows]
    return {"transfer_approvals": len(rows),
            "transfer_due_soon": sum(1 for days in left if days is not None and days <= DUE_SOON_DAYS)}
