"""Keeping the audit trail (issue 10; 000 第十六条): append-only in the database, kept at least six
months, pruned after the configured retention, exportable.

- `install_guard(connection)`: triggers that refuse any UPDATE of `audit_log` and any DELETE of an
  entry younger than `MIN_RETENTION_DAYS` (installed by every migration run, both back ends).
- `prune(session, days)`: deletes entries older than `days` (≥ the minimum); for a chained log the
  links go with them and the last pruned link's hash becomes the anchor `verify_chain` starts from,
  so a pruned prefix still verifies and a removed recent one does not.
- `export_rows(session, since, until)` and the CLI:
  `python -m services.common.audit_retention export SVC --since 2026-01-01 --out audit.xlsx`,
  `python -m services.common.audit_retention prune SVC [--days N]` (default `XUEJI_AUDIT_RETENTION_DAYS`, 365).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, inspect, select, text
from sqlalchemy.orm import Session

from services.common.audit import PRUNED_ANCHOR
from services.common.errors import Invalid
from services.common.models import AuditChainHead, AuditChainLink, AuditEntry
from services.common.sheets import Column, export

MIN_RETENTION_DAYS = 183  # six months, whatever is configured
# Other logs a service keeps beside audit_log, pruned with it: table → time column.
EXTRA_LOGS = {"identity": {"login_audit": "at"}}

EXPORT_COLUMNS = [
    Column("id", "序号", width=10), Column("at", "时间", width=22), Column("actor", "操作人", text=True),
    Column("role", "角色"), Column("action", "操作", width=22), Column("target", "对象", text=True, width=20),
    Column("before", "修改前", width=40), Column("after", "修改后", width=40),
    Column("correlation_id", "关联编号", width=36),
]

_PG_GUARD = f"""
CREATE OR REPLACE FUNCTION xueji_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit_log is append-only';
    END IF;
    IF OLD.at > now() - interval '{MIN_RETENTION_DAYS} days' THEN
        RAISE EXCEPTION 'audit entries are kept at least {MIN_RETENTION_DAYS} days';
    END IF;
    RETURN OLD;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION xueji_audit_append_only();
"""
_SQLITE_GUARD = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    # Stored times are 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC, so they compare as text with datetime().
    f"CREATE TRIGGER IF NOT EXISTS audit_log_keep BEFORE DELETE ON audit_log "
    f"WHEN OLD.at > datetime('now', '-{MIN_RETENTION_DAYS} days') "
    f"BEGIN SELECT RAISE(ABORT, 'audit entries are kept at least {MIN_RETENTION_DAYS} days'); END",
)


def install_guard(connection: Connection) -> None:
    """(Re)install the append-only triggers where the database has an audit log."""
    if not inspect(connection).has_table("audit_log"):
        return
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_PG_GUARD)
    elif connection.dialect.name == "sqlite":
        for statement in _SQLITE_GUARD:
            connection.exec_driver_sql(statement)


def retention_days(days: int | None = None) -> int:
    value = days if days is not None else int(os.environ.get("XUEJI_AUDIT_RETENTION_DAYS", "365"))
    if value < MIN_RETENTION_DAYS:
        raise Invalid(f"审计日志至少保留 {MIN_RETENTION_DAYS} 天（六个月），不能设为 {value} 天")
    return value


def prune(session: Session, service: str, days: int | None = None, now: datetime | None = None) -> dict[str, int]:
    """Delete what is older than the retention; returns counts per table."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days(days))
    counts = {"audit_log": 0, "audit_chain": 0}
    chained = inspect(session.connection()).has_table("audit_chain")
    if chained:
        counts["audit_chain"], last = _prune_chain(session, cutoff)
        if last:  # the entries of pruned links, whatever their own time (a link's prefix is contiguous)
            counts["audit_log"] += session.execute(delete(AuditEntry).where(AuditEntry.id.in_(
                select(AuditChainLink.audit_id).where(AuditChainLink.seq <= last)))).rowcount or 0
            session.execute(delete(AuditChainLink).where(AuditChainLink.seq <= last))
    unchained = AuditEntry.at < cutoff
    if chained:
        unchained = unchained & AuditEntry.id.not_in(select(AuditChainLink.audit_id))
    counts["audit_log"] += session.execute(delete(AuditEntry).where(unchained)).rowcount or 0
    for table, column in EXTRA_LOGS.get(service, {}).items():
        counts[table] = session.execute(text(f"DELETE FROM {table} WHERE {column} < :cutoff"),
                                        {"cutoff": cutoff}).rowcount or 0
    return counts


def _prune_chain(session: Session, cutoff: datetime) -> tuple[int, int]:
    """Move the anchor to the last link whose entry, and every one before it, is older than `cutoff`."""
    anchor = session.get(AuditChainHead, PRUNED_ANCHOR)
    start = anchor.seq if anchor else 0
    first_kept = session.scalar(
        select(AuditChainLink.seq).join(AuditEntry, AuditEntry.id == AuditChainLink.audit_id)
        .where(AuditChainLink.seq > start, AuditEntry.at >= cutoff).order_by(AuditChainLink.seq).limit(1))
    last = (first_kept - 1) if first_kept is not None else (
        session.scalar(select(AuditChainLink.seq).order_by(AuditChainLink.seq.desc()).limit(1)) or start)
    if last <= start:
        return 0, 0
    link = session.get(AuditChainLink, last)
    assert link is not None
    if anchor is None:
        session.add(AuditChainHead(name=PRUNED_ANCHOR, seq=link.seq, hash=link.hash))
    else:
        anchor.seq, anchor.hash = link.seq, link.hash
    return last - start, last


def export_rows(session: Session, since: date | None = None, until: date | None = None) -> Iterator[dict[str, Any]]:
    query = select(AuditEntry).order_by(AuditEntry.id)
    if since:
        query = query.where(AuditEntry.at >= datetime.combine(since, time(0), tzinfo=UTC))
    if until:
        query = query.where(AuditEntry.at < datetime.combine(until + timedelta(days=1), time(0), tzinfo=UTC))
    for entry in session.scalars(query.execution_options(yield_per=2000)):
        yield {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor, "role": entry.role,
               "action": entry.action, "target": entry.target, "before": entry.before, "after": entry.after,
               "correlation_id": entry.correlation_id}


def export_workbook(session: Session, since: date | None = None, until: date | None = None) -> bytes:
    """The entries as an xlsx (formula-safe cells: before/after hold what people typed)."""
    return export(EXPORT_COLUMNS, export_rows(session, since, until), "审计日志")


def main() -> None:
    from services.common.db import database_for

    parser = argparse.ArgumentParser(description="Export or prune a service's audit log.")
    parser.add_argument("command", choices=["export", "prune"])
    parser.add_argument("service")
    parser.add_argument("--since", type=date.fromisoformat)
    parser.add_argument("--until", type=date.fromisoformat)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--days", type=int)
    args = parser.parse_args()
    db = database_for(args.service)
    if args.command == "export":
        out = args.out or Path(f"audit-{args.service}-{date.today().isoformat()}.xlsx")
        with db.reading() as s:
            out.write_bytes(export_workbook(s, args.since, args.until))
        print(out)
        return
    with db.transaction() as s:
        print(prune(s, args.service, args.days))


if __name__ == "__main__":
    main()
