"""Roster events as housing receives them, callers of each role, and bed lists."""

from __future__ import annotations

from functools import partial
from typing import Any

from services.common import testing as shared

# Housing's tests default to a male student (building policies are tested with both).
registered = partial(shared.registered, name="张伟", gender="1")
status_changed = shared.status_changed
caller = shared.caller


def room_beds(building_code: str = "B1", building_name: str = "1号楼", policy: str = "M",
              room_no: str = "101", capacity: int = 4, beds: int = 4) -> list[dict[str, Any]]:
    """The beds of one room as the housing centre submits them."""
    return [{"building_code": building_code, "building_name": building_name, "gender_policy": policy,
             "room_no": room_no, "capacity": capacity, "bed_no": str(n)} for n in range(1, beds + 1)]
