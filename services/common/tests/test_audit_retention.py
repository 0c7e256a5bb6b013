"""The audit trail is append-only in the database, kept at least six months, pruned after the
retention without breaking the chain, and exportable (issue 10), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from services.common import audit_retention as retention
from services.common.audit import audit, verify_chain
from services.common.caller import system_caller
from services.common.db import Database
from services.common.errors import Invalid
from services.common.models import AuditEntry

CALLER = system_caller("test")
OLD = datetime.now(UTC) - timedelta(days=400)


def write(db: Database, action: str, *, at: datetime | None = None, chain: bool = False,
          target: str = "202301010101") -> None:
    """An entry through the real `audit` path; `at` backdates it before it is flushed (and chained)."""
    with db.transaction() as s:
        audit(s, CALLER, action, target, None, {"n": action}, chain=chain)
        if at is not None:
            for obj in s.new:
                if isinstance(obj, AuditEntry):
                    obj.at = at


def actions(db: Database) -> list[str]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


@pytest.fixture
def roster(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("roster")  # roster chains its entries


def test_the_log_refuses_updates_and_early_deletes(roster: Database) -> None:
    write(roster, "fresh")
    write(roster, "old", at=OLD)
    with pytest.raises(DBAPIError), roster.transaction() as s:
        s.execute(text("UPDATE audit_log SET actor = 'someone else'"))
    with pytest.raises(DBAPIError), roster.transaction() as s:
        s.execute(text("DELETE FROM audit_log WHERE action = 'fresh'"))
    with roster.transaction() as s:  # older than six months: the retention job may remove it
        s.execute(text("DELETE FROM audit_log WHERE action = 'old'"))
    assert actions(roster) == ["fresh"]


def test_pruning_keeps_the_chain_verifiable(roster: Database) -> None:
    for i in range(3):
        write(roster, f"old-chained-{i}", at=OLD + timedelta(minutes=i), chain=True)
    write(roster, "old-plain", at=OLD)
    write(roster, "new-chained", chain=True)
    write(roster, "new-plain")
    with roster.reading() as s:
        assert verify_chain(s).ok and verify_chain(s).checked == 4

    with roster.transaction() as s:
        counts = retention.prune(s, "roster", days=365)
    assert counts == {"audit_log": 4, "audit_chain": 3}
    assert actions(roster) == ["new-chained", "new-plain"]
    write(roster, "after-prune", chain=True)
    with roster.reading() as s:
        report = verify_chain(s)
        assert report.ok and report.checked == 2
    with roster.transaction() as s:
        assert retention.prune(s, "roster", days=365) == {"audit_log": 0, "audit_chain": 0}

    with roster.transaction() as s:  # someone removes the anchor to hide a removed prefix
        s.execute(text("DELETE FROM audit_chain_head WHERE name = 'audit.pruned'"))
    with roster.reading() as s:
        assert not verify_chain(s).ok


def test_retention_is_at_least_six_months(roster: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Invalid, match="至少保留 183 天"), roster.transaction() as s:
        retention.prune(s, "roster", days=90)
    monkeypatch.setenv("XUEJI_AUDIT_RETENTION_DAYS", "200")
    assert retention.retention_days() == 200


def test_login_log_is_pruned_with_identity_audit(migrated_db: Callable[[str], Database]) -> None:
    identity = migrated_db("identity")
    with identity.transaction() as s:
        for at in (OLD, datetime.now(UTC)):
            s.execute(text("INSERT INTO login_audit (username, at, remote_addr, result) VALUES ('u', :at, NULL, 'ok')"),
                      {"at": at})
    with identity.transaction() as s:
        assert retention.prune(s, "identity", days=365)["login_audit"] == 1
    with identity.reading() as s:
        assert s.scalar(text("SELECT count(*) FROM login_audit")) == 1


def test_export_is_a_formula_safe_workbook(roster: Database) -> None:
    write(roster, "student.update", target="=HYPERLINK(\"http://x\")")
    write(roster, "old", at=OLD)
    with roster.reading() as s:
        data = retention.export_workbook(s, since=(datetime.now(UTC) - timedelta(days=1)).date())
        total = s.scalar(select(func.count()).select_from(AuditEntry))
    ws = load_workbook(io.BytesIO(data)).worksheets[0]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    assert total == 2 and len(rows) == 1  # the old one is outside the period asked for
    assert [c.value for c in ws[1]][:5] == ["序号", "时间", "操作人", "角色", "操作"]
    assert rows[0][4] == "student.update" and rows[0][5] == "'=HYPERLINK(\"http://x\")"
