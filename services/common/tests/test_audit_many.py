"""`audit_many`: many entries in one INSERT, chained from the returned ids, in write order with the
entries `audit` wrote before them in the same transaction (roster's database: it chains)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select, text

from services.common.audit import audit, audit_many, verify_chain
from services.common.caller import system_caller
from services.common.db import Database
from services.common.models import AuditChainLink, AuditEntry
from services.common.testing import drop_audit_guard

CALLER = system_caller("test")


@pytest.fixture
def roster(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("roster")


def test_entries_are_written_and_chained_in_write_order(roster: Database) -> None:
    with roster.transaction() as s:
        audit(s, CALLER, "single.first", "a", None, {"n": 0}, chain=True)  # pending, not yet flushed
        audit_many(s, CALLER, [("bulk", f"t{i}", None, {"n": i, "password": "secret"}) for i in range(1, 4)],
                   chain=True)
        audit(s, CALLER, "single.last", "b", {"n": 4}, None, chain=True)
    with roster.reading() as s:
        chained = s.execute(select(AuditEntry.action, AuditEntry.target, AuditEntry.after)
                            .join(AuditChainLink, AuditChainLink.audit_id == AuditEntry.id)
                            .order_by(AuditChainLink.seq)).all()
        assert [(a, t) for a, t, _ in chained] == [
            ("single.first", "a"), ("bulk", "t1"), ("bulk", "t2"), ("bulk", "t3"), ("single.last", "b")]
        assert all("secret" not in (after or "") for _, _, after in chained)  # passwords never written
        assert verify_chain(s).ok


def test_an_edited_bulk_entry_breaks_the_chain(roster: Database) -> None:
    with roster.transaction() as s:
        audit_many(s, CALLER, [("bulk", f"t{i}", None, {"n": i}) for i in range(5)], chain=True)
    with roster.transaction() as s:
        drop_audit_guard(s)
        s.execute(text("UPDATE audit_log SET after = '{\"n\": 99}' WHERE target = 't3'"))
    with roster.reading() as s:
        report = verify_chain(s)
    assert not report.ok and report.broken_at_seq == 4


def test_unchained_entries_and_nothing_to_write(roster: Database) -> None:
    with roster.transaction() as s:
        audit_many(s, CALLER, [])
        audit_many(s, CALLER, [("plain", "x", None, None)])
    with roster.reading() as s:
        assert s.scalars(select(AuditEntry.action)).all() == ["plain"]
        assert s.scalars(select(AuditChainLink.seq)).all() == []
