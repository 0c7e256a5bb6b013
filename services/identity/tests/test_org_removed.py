"""A unit roster deletes (`org.units_changed` with `removed`) leaves identity's read model of the tree;
earlier v1 payloads (units only) still read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.common.db import Database
from services.common.envelope import Envelope, new_event, parse_envelope
from services.common.events import OrgUnitsChanged
from services.common.testing import ROSTER, org_units_changed
from services.identity import handlers
from services.identity.adapters.orm import OrgUnit

CLASS = "2023010101"


def removed(*codes: str, occurred_at: datetime | None = None) -> Envelope:
    return new_event("org.units_changed", OrgUnitsChanged(removed=list(codes)), source="roster", actor=ROSTER,
                     occurred_at=occurred_at)


def codes(db: Database) -> set[str]:
    with db.reading() as s:
        return set(s.scalars(OrgUnit.__table__.select().with_only_columns(OrgUnit.code)))


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    database = migrated_db("identity")
    handlers.on_org_units_changed(database, org_units_changed(
        ("01", "college", None), ("0101", "major", "01"), (CLASS, "class", "0101"), ("2023010102", "class", "0101"),
        occurred_at=datetime.now(UTC) - timedelta(minutes=5)))
    return database


def test_removed_units_leave_the_read_model_and_the_rest_stays(db: Database) -> None:
    event = removed(CLASS)
    handlers.on_org_units_changed(db, event)
    assert codes(db) == {"01", "0101", "2023010102"}
    handlers.on_org_units_changed(db, event)  # redelivered: nothing more
    assert codes(db) == {"01", "0101", "2023010102"}


def test_a_removal_older_than_the_last_save_of_the_unit_keeps_it(db: Database) -> None:
    handlers.on_org_units_changed(db, org_units_changed((CLASS, "class", "0101"), occurred_at=datetime.now(UTC)))
    handlers.on_org_units_changed(db, removed(CLASS, occurred_at=datetime.now(UTC) - timedelta(minutes=1)))
    assert CLASS in codes(db)


def test_the_payload_reads_old_and_new_shapes_and_must_name_something() -> None:
    old = parse_envelope(org_units_changed(("01", "college", None)).model_dump(mode="json"))
    assert OrgUnitsChanged.model_validate(old.payload).removed == []
    assert OrgUnitsChanged.model_validate({"removed": ["01"]}).units == []
    with pytest.raises(ValidationError):
        OrgUnitsChanged.model_validate({"units": [], "removed": []})
