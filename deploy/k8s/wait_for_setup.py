"""Init container of every service pod: wait until the `migrate` and `topology` jobs have done their part.

    python -m deploy.k8s.wait_for_setup SERVICE

Compose starts a service only after both one-shot jobs completed; Kubernetes has no such
ordering between a Job and a Deployment, so each service pod checks the effect instead: its
own database is at the alembic head of the image it runs, and every handler queue (with its
dead-letter queue) exists on the broker, so nothing it publishes is dropped. Exits 0 when both
hold; 1 after XUEJI_SETUP_WAIT seconds (default 900), and the kubelet starts it again.
Checks read only: it never migrates or declares anything itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from services.catalog import SERVICES, all_service_classes
from services.common.db import database_url
from services.common.migrate import alembic_config
from services.common.relay import amqp_uri
from services.common.topology import bindings_of, depths


def database_problems(service: str) -> list[str]:
    """Empty when the service's database is at the head revision of this image's migrations."""
    url = database_url(service)
    heads = set(ScriptDirectory.from_config(alembic_config(service, url)).get_heads())
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    if current == heads:
        return []
    return [f"{service} database at {sorted(current) or 'no revision'}, migrations head {sorted(heads)}"]


def topology_problems(uri: str) -> list[str]:
    """Empty when every handler queue and its dead-letter queue are declared (passive checks)."""
    queues = sorted({b.queue for b in bindings_of(all_service_classes())})
    missing = [d.queue for d in depths(uri, queues) if d.messages is None or d.dead is None]
    if not missing:
        return []
    return [f"{len(missing)} of {len(queues)} handler queues not declared yet (first: {missing[0]})"]


def problems(service: str) -> list[str]:
    found = []
    for check in (lambda: database_problems(service), lambda: topology_problems(amqp_uri())):
        try:
            found += check()
        except Exception as exc:  # noqa: BLE001 - not reachable yet counts as not ready: try again
            found.append(f"{type(exc).__name__}: {exc}")
    return found


def wait(service: str, timeout: float, interval: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        found = problems(service)
        if not found:
            print(f"{service}: database migrated and topology declared", flush=True)
            return True
        if time.monotonic() >= deadline:
            print(f"{service}: still waiting after {timeout:.0f} s: {'; '.join(found)}", file=sys.stderr, flush=True)
            return False
        print(f"{service}: waiting: {'; '.join(found)}", flush=True)
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Wait for the migrate and topology jobs.")
    parser.add_argument("service", choices=list(SERVICES))
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("XUEJI_SETUP_WAIT", "900")))
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    return 0 if wait(args.service, args.timeout, args.interval) else 1


if __name__ == "__main__":
    sys.exit(main())
