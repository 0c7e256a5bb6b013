"""Backups of every service's database, with retention, and their restore.

    python -m deploy.backup create [--dest DIR] [--keep N]     # one set: var/backups/<UTC time>/
    python -m deploy.backup list   [--dest DIR]
    python -m deploy.backup verify SET
    python -m deploy.backup restore SET [--service NAME ...]   # services must be stopped

Each database is copied as one consistent snapshot: SQLite through its online backup API
(readers and writers may go on meanwhile), PostgreSQL with `pg_dump --format=custom`
(one repeatable-read transaction). The services' databases are separate, so a set is
not one instant across services; nothing crosses between them but events, and
`backup_order` takes consumers before producers. After a restore, outbox rows not yet
marked published go out again and the consumers' inboxes drop what they had applied.

A set holds `<service>.sqlite3` or `<service>.dump` and `manifest.json` (kind, size,
SHA-256, row counts per table, pending outbox rows). `create` keeps the newest `--keep`
sets (default 14: two weeks of daily backups) and deletes older ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from services.catalog import SERVICES
from services.common.db import data_dir, database_url

MANIFEST = "manifest.json"


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    service: str
    url: str

    @property
    def kind(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    @property
    def filename(self) -> str:
        return f"{self.service}.sqlite3" if self.kind == "sqlite" else f"{self.service}.dump"

    def sqlite_path(self) -> Path:
        database = make_url(self.url).database
        if not database or database == ":memory:":
            raise BackupError(f"{self.service}: 内存数据库无法备份")
        return Path(database)


def backup_order() -> list[str]:
    """Consumers first, roster (the source of student events) last: then every status change
    a consumer's copy has applied was committed in roster before roster's copy was taken,
    so a restored roster never re-uses a change id its consumers have already seen."""
    return [name for name in SERVICES if name != "roster"] + ["roster"]


def targets(services: list[str] | None = None) -> list[Target]:
    return [Target(name, database_url(name)) for name in (services or backup_order())]


def default_dest() -> Path:
    return Path(os.environ.get("XUEJI_BACKUP_DIR") or data_dir() / "backups")


# --- what a database holds ------------------------------------------------------------
def _counts(conn: Any) -> tuple[dict[str, int], int]:
    """Rows per table and outbox rows not yet published, on an open connection."""
    names = sorted(inspect(conn).get_table_names())
    counts = {n: conn.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}
    pending = conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL")).scalar_one() \
        if "outbox" in names else 0
    return counts, pending


def database_counts(url: str) -> tuple[dict[str, int], int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return _counts(conn)
    finally:
        engine.dispose()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pg_env(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump/pg_restore; the password goes by environment only."""
    parsed = make_url(url)
    args = ["--host", parsed.host or "127.0.0.1", "--port", str(parsed.port or 5432),
            "--username", parsed.username or "postgres", "--dbname", parsed.database or ""]
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[:2000]}")


# --- taking a copy ----------------------------------------------------------------------
def _copy_out(target: Target, dest: Path) -> tuple[dict[str, int], int]:
    """Snapshot one database into `dest`; returns the snapshot's row counts and pending events."""
    if target.kind == "sqlite":
        source_path = target.sqlite_path()
        if not source_path.exists():
            raise BackupError(f"{target.service}: 数据库文件 {source_path} 不存在")
        source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
        copy = sqlite3.connect(dest)
        try:
            source.backup(copy)  # a consistent snapshot even while services write (WAL)
        finally:
            copy.close()
            source.close()
        return database_counts(f"sqlite:///{dest}")
    # PostgreSQL: count inside a repeatable-read transaction and let pg_dump share its
    # exported snapshot, so the manifest describes exactly the rows in the dump.
    engine = create_engine(target.url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            counted = _counts(conn)
            args, env = _pg_env(target.url)
            _run(["pg_dump", "--format=custom", "--no-owner", f"--snapshot={snapshot}",
                  "--file", str(dest), *args], env)
            return counted
    finally:
        engine.dispose()


def create(dest: Path | None = None, keep: int = 14, services: list[str] | None = None) -> Path:
    """Back up every service's database into a new set; returns its directory."""
    root = dest or default_dest()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    work = root / f".{stamp}.partial"
    work.mkdir(parents=True)
    entries = []
    try:
        for target in targets(services):
            path = work / target.filename
            counts, pending = _copy_out(target, path)
            entries.append({
                "service": target.service, "kind": target.kind, "file": target.filename,
                "bytes": path.stat().st_size, "sha256": _sha256(path), "tables": counts,
                "pending_outbox": pending,
            })
        manifest = {"created_at": datetime.now(UTC).isoformat(), "databases": entries}
        (work / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
        final = root / stamp
        work.rename(final)  # a set is either complete or absent
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    prune(root, keep)
    return final


def prune(root: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` complete sets; returns what was deleted."""
    if keep < 1:
        raise BackupError("至少保留 1 份备份")
    removed = sets(root)[:-keep]
    for path in removed:
        shutil.rmtree(path)
    return removed


def sets(root: Path) -> list[Path]:
    """Complete sets, oldest first (names are UTC timestamps)."""
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).exists())


# --- checking and restoring -------------------------------------------------------------
def read_manifest(backup: Path) -> dict[str, Any]:
    path = backup / MANIFEST
    if not path.exists():
        raise BackupError(f"{backup} 不是完整的备份（缺少 {MANIFEST}）")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def verify(backup: Path) -> list[str]:
    """Files missing or changed since the backup was taken; empty when the set is intact."""
    problems = []
    for entry in read_manifest(backup)["databases"]:
        path = backup / entry["file"]
        if not path.exists():
            problems.append(f"{entry['file']}: 文件缺失")
        elif _sha256(path) != entry["sha256"]:
            problems.append(f"{entry['file']}: 校验和不符（文件已损坏或被改动）")
    return problems


def _restore_pg(url: str, path: Path) -> None:
    args, env = _pg_env(url)
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error", *args, str(path)], env)


def restore(backup: Path, services: list[str] | None = None) -> list[str]:
    """Put the set's databases back in place of the current ones (services stopped)."""
    problems = verify(backup)
    if problems:
        raise BackupError("备份校验失败，未恢复：" + "；".join(problems))
    entries = {e["service"]: e for e in read_manifest(backup)["databases"]}
    chosen = services or list(entries)
    unknown = [s for s in chosen if s not in entries]
    if unknown:
        raise BackupError(f"备份中没有这些服务的数据库：{', '.join(unknown)}")
    for target in targets(chosen):
        entry = entries[target.service]
        if entry["kind"] != target.kind:
            raise BackupError(f"{target.service}: 备份是 {entry['kind']}，当前配置是 {target.kind}")
        source = backup / entry["file"]
        if target.kind == "sqlite":
            live = target.sqlite_path()
            live.parent.mkdir(parents=True, exist_ok=True)
            staged = live.with_name(live.name + ".restoring")
            shutil.copyfile(source, staged)
            for suffix in ("-wal", "-shm"):  # a stale log would be replayed over the restored file
                live.with_name(live.name + suffix).unlink(missing_ok=True)
            staged.replace(live)
        else:
            _restore_pg(target.url, source)
    return chosen


# --- command line -----------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.backup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("create", help="back up every service's database")
    make.add_argument("--dest", type=Path, default=None)
    make.add_argument("--keep", type=int, default=int(os.environ.get("XUEJI_BACKUP_KEEP", "14")))
    listing = sub.add_parser("list", help="list complete backup sets")
    listing.add_argument("--dest", type=Path, default=None)
    check = sub.add_parser("verify", help="check a set's files against its manifest")
    check.add_argument("set", type=Path)
    back = sub.add_parser("restore", help="restore a set (stop the services first)")
    back.add_argument("set", type=Path)
    back.add_argument("--service", action="append", choices=list(SERVICES))
    args = parser.parse_args(argv)
    try:
        if args.command == "create":
            made = create(args.dest, args.keep)
            for entry in read_manifest(made)["databases"]:
                print(f"{entry['service']:<10}{entry['kind']:<12}{entry['bytes']:>12} bytes  "
                      f"{sum(entry['tables'].values()):>9} rows  {entry['pending_outbox']} pending events")
            print(made)
        elif args.command == "list":
            for path in sets(args.dest or default_dest()):
                print(path)
        elif args.command == "verify":
            problems = verify(args.set)
            print("\n".join(problems) or "完好")
            return 1 if problems else 0
        else:
            print("已恢复：" + "、".join(restore(args.set, args.service)))
    except BackupError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
