"""Alembic for one service's database, configured in code (no alembic.ini per service).

    python -m services.common.migrate roster          # upgrade to head
    python -m services.common.migrate --all
Each service's `migrations/env.py` calls `run_env` with its own metadata; the outbox
and inbox tables (`MessagingBase`) are migrated into every service database alongside.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from services.common.db import database_url

SERVICES_DIR = Path(__file__).resolve().parent.parent


def alembic_config(service: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or database_url(service)).replace("%", "%%"))
    return cfg


def upgrade(service: str, url: str | None = None) -> None:
    command.upgrade(alembic_config(service, url), "head")


def run_env(target_metadata: list[MetaData]) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context
    from sqlalchemy import create_engine

    from services.common.audit_retention import install_guard

    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
            # Outside alembic's versions: reinstalled on every run, so every service's log stays append-only.
            install_guard(connection)
    engine.dispose()


def main() -> None:
    from services.catalog import SERVICES

    parser = argparse.ArgumentParser(description="Migrate service databases to head.")
    parser.add_argument("service", nargs="?")
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args()
    names = list(SERVICES) if args.all or not args.service else [args.service]
    for name in names:
        upgrade(name)
        print(f"{name}: migrated ({database_url(name).split('@')[-1]})")


if __name__ == "__main__":
    main()
