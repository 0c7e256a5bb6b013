"""Migration 0002 on both back ends: each staff account's role and scope become its first
grant, and current password hashes start the history."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from sqlalchemy import create_engine, text

from services.common.db import Database
from services.common.migrate import alembic_config, upgrade
from services.identity import handlers
from services.identity.tests.factories import PASSWORD


def test_staff_scopes_move_into_grants(database_url_for: Callable[[str], str]) -> None:
    url = database_url_for("identity")
    command.upgrade(alembic_config("identity", url), "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        for username, role, kind, ids, hashed in (
            ("1000004", "counselor", "classes", '["2023010101", "2023010102"]', "$argon2id$old"),
            ("202301010105", "student", "self", '["202301010105"]', None),
        ):
            conn.execute(text(
                "INSERT INTO accounts (username, display_name, role, scope_kind, scope_ids, active, password_hash, "
                "must_change_password, failed_logins, created_at, updated_at) VALUES "
                "(:u, '某人', :r, :k, :i, true, :h, false, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                {"u": username, "r": role, "k": kind, "i": ids, "h": hashed})
    engine.dispose()
    upgrade("identity", url)
    db = Database(url)
    try:
        with db.reading() as s:
            grants = s.execute(text("SELECT username, role, scope_kind, scope_ids FROM grants")).all()
            history = s.execute(text("SELECT username FROM password_history")).scalars().all()
        assert [tuple(g) for g in grants] == [("1000004", "counselor", "classes", '["2023010101", "2023010102"]')]
        assert history == ["1000004"]
        handlers.set_password(db, handlers.system_caller("test"), "1000004", PASSWORD)
        who = handlers.login(db, "1000004", PASSWORD)["caller"]
        assert who["scope"] == {"kind": "classes", "ids": ["2023010101", "2023010102"]}
    finally:
        db.dispose()
