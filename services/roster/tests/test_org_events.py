"""Roster publishes the org units it saves (`org.units_changed`) through the outbox, in the
same transaction as the save (real SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.caller import system_caller
from services.common.db import Database
from services.common.envelope import parse_envelope
from services.common.errors import Invalid
from services.common.models import OutboxMessage
from services.roster import handlers
from services.roster.adapters.orm import OrgUnit

SYSTEM = system_caller("test")


def published(db: Database) -> list[dict[str, Any]]:
    with db.reading() as s:
        return [json.loads(b) for b in s.scalars(select(OutboxMessage.body)
                                                 .where(OutboxMessage.event_type == "org.units_changed")
                                                 .order_by(OutboxMessage.id))]


def test_saved_units_are_published_once_per_upsert_as_they_now_are(migrated_db: Any) -> None:
    db = migrated_db("roster")
    handlers.upsert_org_units(db, SYSTEM, [
        {"code": "01", "name": "计算机学院", "kind": "college"},
        {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
        {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
    ])
    # A class moved to another college's major and renamed; the same code twice in one call: the last wins.
    handlers.upsert_org_units(db, SYSTEM, [
        {"code": "02", "name": "数学学院", "kind": "college"},
        {"code": "0201", "name": "数学", "kind": "major", "parent_code": "02"},
        {"code": "2023010101", "name": "临时", "kind": "class", "parent_code": "0101"},
        {"code": "2023010101", "name": "数学2301", "kind": "class", "parent_code": "0201"},
    ])
    handlers.upsert_org_units(db, SYSTEM, [])  # nothing saved, nothing published

    first, second = (parse_envelope(body) for body in published(db))
    assert (first.type, first.version, first.source) == ("org.units_changed", 1, "roster")
    assert first.payload["units"] == [
        {"code": "01", "name": "计算机学院", "kind": "college", "parent_code": None},
        {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
        {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"},
    ]
    assert [(u["code"], u["name"], u["parent_code"]) for u in second.payload["units"]] == [
        ("02", "数学学院", None), ("0201", "数学", "02"), ("2023010101", "数学2301", "0201")]
    assert second.actor.id == SYSTEM.username


def test_a_refused_upsert_saves_and_publishes_nothing(migrated_db: Any) -> None:
    db = migrated_db("roster")
    with pytest.raises(Invalid, match="组织单位类型"):
        handlers.upsert_org_units(db, SYSTEM, [
            {"code": "01", "name": "计算机学院", "kind": "college"},
            {"code": "X", "name": "坏单位", "kind": "campus"},
        ])
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(OrgUnit)) == 0
    assert published(db) == []
