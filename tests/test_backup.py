"""Restore drill: back up every service's database, destroy them, restore, compare.

Runs on SQLite and PostgreSQL with real data written through the services' own use cases,
including outbox events not yet published (no relay runs here), which must survive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from deploy import backup
from services.catalog import SERVICES
from services.common.caller import system_caller
from services.common.db import Database
from services.common.migrate import upgrade
from services.common.testing import registered
from services.housing import handlers as housing
from services.identity import handlers as identity
from services.roster import handlers as roster
from services.roster import importing
from services.roster.tests.factories import student

SYSTEM = system_caller("tests")


@pytest.fixture
def databases(database_url_for: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    urls = {name: database_url_for(name) for name in SERVICES}
    for name, url in urls.items():
        monkeypatch.setenv(f"{name.upper()}_DATABASE_URL", url)
        upgrade(name, url)
    yield urls


def fill(urls: dict[str, str]) -> None:
    """Students registered in roster (events left in its outbox), beds, accounts."""
    db = Database(urls["roster"])
    roster.upsert_org_units(db, SYSTEM, [
        {"code": "01", "name": "计算机学院", "kind": "college"},
        {"code": "0101", "name": "计算机科学与技术", "kind": "major", "parent_code": "01"},
        {"code": "2023010101", "name": "计科2301", "kind": "class", "parent_code": "0101"}])
    importing.register_students(db, SYSTEM, [student(i) for i in range(1, 7)])
    db.dispose()
    db = Database(urls["housing"])
    housing.create_beds(db, SYSTEM, [{"building_code": "B1", "building_name": "1号楼", "gender_policy": "M",
                                      "room_no": "101", "capacity": 4, "bed_no": str(n)} for n in range(1, 5)])
    housing.on_student_registered(db, registered("202301010101", gender="1", name="张伟"))
    housing.assign_bed(db, SYSTEM, "202301010101", "1号楼-101-1")
    db.dispose()
    db = Database(urls["identity"])
    identity.on_student_registered(db, registered("202301010101", gender="1", name="张伟"))
    db.dispose()


def everything(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: sorted(tuple(map(str, row)) for row in conn.execute(text(f'SELECT * FROM "{name}"')))
                    for name in sorted(inspect(conn).get_table_names())}
    finally:
        engine.dispose()


def destroy(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def test_restore_drill_brings_back_every_record_and_pending_event(databases: dict[str, str], tmp_path: Path) -> None:
    fill(databases)
    before = {name: everything(url) for name, url in databases.items()}
    pending = backup.database_counts(databases["roster"])[1]
    assert pending == 7  # one student.registered per student and the org.units_changed, never relayed

    made = backup.create(tmp_path / "backups")
    manifest = backup.read_manifest(made)
    by_service = {e["service"]: e for e in manifest["databases"]}
    assert [e["service"] for e in manifest["databases"]][-1] == "roster"  # the source, last
    assert set(by_service) == set(SERVICES)
    assert by_service["roster"]["tables"]["students"] == 6
    assert by_service["roster"]["pending_outbox"] == 7
    assert backup.verify(made) == []

    for url in databases.values():
        destroy(url)
    assert sorted(backup.restore(made)) == sorted(SERVICES)

    after = {name: everything(url) for name, url in databases.items()}
    assert after == before
    assert backup.database_counts(databases["roster"])[1] == 7


def test_retention_keeps_the_newest_sets(databases: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "backups"
    made = [backup.create(root, keep=2, services=["transfer"]) for _ in range(3)]
    assert backup.sets(root) == made[1:]


def test_a_damaged_set_is_refused_and_nothing_is_restored(databases: dict[str, str], tmp_path: Path) -> None:
    fill(databases)
    made = backup.create(tmp_path / "backups", services=["roster"])
    damaged = made / by_file(made, "roster")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    damaged.write_bytes(bytes(data))
    before = everything(databases["roster"])
    assert backup.verify(made) and "校验和不符" in backup.verify(made)[0]
    with pytest.raises(backup.BackupError, match="备份校验失败"):
        backup.restore(made)
    assert everything(databases["roster"]) == before


def by_file(made: Path, service: str) -> str:
    return next(e["file"] for e in backup.read_manifest(made)["databases"] if e["service"] == service)


def test_the_command_line_creates_lists_and_verifies(databases: dict[str, str], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "backups"
    assert backup.main(["create", "--dest", str(root), "--keep", "3"]) == 0
    printed = capsys.readouterr().out
    assert "roster" in printed and "pending events" in printed
    [made] = backup.sets(root)
    assert backup.main(["list", "--dest", str(root)]) == 0
    assert str(made) in capsys.readouterr().out
    assert backup.main(["verify", str(made)]) == 0
    assert backup.main(["restore", str(tmp_path / "nothing")]) == 1
    assert "不是完整的备份" in capsys.readouterr().err
