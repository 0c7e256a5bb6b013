"""The outbox relay: publishes outbox rows with publisher confirms, then marks them sent.

Events of the high-volume types (`events.PACKED_TYPES`) go several to a message (`packed`).

On PostgreSQL a batch is claimed inside a transaction (`FOR UPDATE SKIP LOCKED`, so
several instances never publish the same rows at once), published, confirmed by the
broker as a whole, and only then marked. On SQLite (one writer at a time) the batch is
read, published and confirmed outside any write transaction, then marked. If the broker is down or refuses a message,
the transaction rolls back and the rows wait for the next round: an event may be
published twice (consumers' inboxes absorb that), never lost.

Run embedded in each service (`OutboxRelayProvider`) or alone:
    python -m services.common.relay roster [--once]
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from datetime import UTC, datetime
from urllib.parse import unquote, urlparse

import amqp
from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from services.common.db import Database, database_for
from services.common.events import PACKED_TYPES
from services.common.models import OutboxMessage
from services.common.outbox import on_outbox_commit

log = logging.getLogger(__name__)

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"


def amqp_uri() -> str:
    return os.environ.get("XUEJI_AMQP_URI", DEFAULT_AMQP_URI)


def amqp_connection(uri: str, **kwargs: object) -> amqp.Connection:
    """A py-amqp connection from an amqp:// URI (vhost in the path, '/' when empty)."""
    parts = urlparse(uri)
    vhost = unquote(parts.path[1:]) if parts.path and parts.path != "/" else "/"
    conn = amqp.Connection(
        host=f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=vhost,
        connect_timeout=5,
        **kwargs,
    )
    conn.connect()
    return conn


class ConfirmingPublisher:
    """Publishes a batch on one channel in confirm mode and waits for every ack."""

    def __init__(self, uri: str, confirm_timeout: float = 15.0) -> None:
        self.uri = uri
        self.confirm_timeout = confirm_timeout
        self._conn: amqp.Connection | None = None
        self._channel: amqp.Channel | None = None
        self._declared: set[str] = set()
        self._acked = 0
        self._nacked = False

    def _open(self) -> amqp.Channel:
        if self._channel is None:
            self._conn = amqp_connection(self.uri)
            channel = self._conn.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._channel = channel
            self._declared.clear()
            self._acked = 0
        return self._channel

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._acked = max(self._acked, delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True

    def publish_batch(self, messages: list[tuple[str, str, str, str]]) -> None:
        """messages: (exchange, routing_key, message_id, json body); raises unless all confirmed."""
        channel = self._open()
        assert self._conn is not None
        try:
            start_tag = self._acked
            self._nacked = False
            for exchange, routing_key, message_id, body in messages:
                if exchange not in self._declared:
                    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
                    self._declared.add(exchange)
                msg = amqp.Message(
                    body,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=message_id,
                )
                channel.basic_publish(msg, exchange=exchange, routing_key=routing_key)
            last_tag = start_tag + len(messages)
            deadline = time.monotonic() + self.confirm_timeout
            while self._acked < last_tag and not self._nacked:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("broker did not confirm the batch in time")
                self._conn.drain_events(timeout=remaining)
            if self._nacked:
                raise RuntimeError("broker refused (nacked) part of the batch")
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.collect()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass


Wire = tuple[str, str, str, str]  # (exchange, routing key = event type, message id, JSON body)


def pack_size() -> int:
    return int(os.environ.get("XUEJI_PACK_SIZE", "50"))


def packed(wires: list[Wire], size: int, types: frozenset[str] = PACKED_TYPES) -> list[Wire]:
    """Consecutive events of one packed type become one message: a JSON array of their envelopes
    (up to `size`), its message id the first event's. Order is kept; other events go as they are.

    Each persistent message costs the broker and every consumer far more than its bytes: a
    graduation's status changes, packed by fifty, are one message where there were fifty."""
    messages: list[Wire] = []
    run: list[Wire] = []

    def close_run() -> None:
        if len(run) == 1:
            messages.append(run[0])
        elif run:
            messages.append((run[0][0], run[0][1], run[0][2], "[" + ",".join(w[3] for w in run) + "]"))
        run.clear()

    for wire in wires:
        if run and (wire[:2] != run[0][:2] or len(run) >= size):
            close_run()
        if wire[1] in types and size > 1:
            run.append(wire)
        else:
            messages.append(wire)
    close_run()
    return messages


class OutboxRelay:
    def __init__(self, db: Database, uri: str | None = None, batch_size: int = 500,
                 pack: int | None = None) -> None:
        self.db = db
        self.publisher = ConfirmingPublisher(uri or amqp_uri())
        self.batch_size = batch_size
        self.pack_size = pack_size() if pack is None else pack

    def publish_pending(self) -> int:
        """Publish one batch; returns how many rows were published and marked."""
        if self.db.is_sqlite:
            return self._publish_pending_sqlite()
        with self.db.transaction() as session:
            rows = session.execute(self._pending().with_for_update(skip_locked=True)).tuples().all()
            if not rows:
                return 0
            self.publisher.publish_batch(packed([(r[1], r[2], r[3], r[4]) for r in rows], self.pack_size))
            self._mark_sent(session, [row_id for row_id, *_ in rows])
            return len(rows)

    def _publish_pending_sqlite(self) -> int:
        # SQLite has one writer at a time: waiting for confirms inside a write transaction
        # would stall every handler of the service. Read, publish, then mark in a short
        # transaction; a crash in between republishes the batch, which inboxes absorb.
        with self.db.reading() as session:
            rows = session.execute(self._pending()).tuples().all()
        if not rows:
            return 0
        self.publisher.publish_batch(packed([(r[1], r[2], r[3], r[4]) for r in rows], self.pack_size))
        with self.db.transaction() as session:
            self._mark_sent(session, [row_id for row_id, *_ in rows])
        return len(rows)

    def _pending(self) -> Select[tuple[int, str, str, str, str]]:
        # Columns, not ORM objects: a busy relay reads thousands of rows a second.
        o = OutboxMessage
        return (select(o.id, o.exchange, o.event_type, o.event_id, o.body)
                .where(o.published_at.is_(None))
                .order_by(o.id)
                .limit(self.batch_size))

    @staticmethod
    def _mark_sent(session: Session, ids: list[int]) -> None:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                        .values(published_at=datetime.now(UTC)).execution_options(synchronize_session=False))

    def drain(self) -> int:
        total = 0
        while (n := self.publish_pending()) > 0:
            total += n
        return total

    def close(self) -> None:
        self.publisher.close()


class RelayLoop:
    """Runs a relay until stopped: woken at once by commits in this process, else polls."""

    def __init__(self, relay: OutboxRelay, poll_interval: float = 0.5) -> None:
        self.relay = relay
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._unsubscribe = on_outbox_commit(self._wake.set)

    def run(self) -> None:
        backoff = self.poll_interval
        while not self._stopped.is_set():
            self._wake.clear()
            try:
                self.relay.drain()
                backoff = self.poll_interval
            except (OSError, amqp.exceptions.AMQPError, TimeoutError, RuntimeError) as exc:
                log.warning("outbox relay: broker unavailable, will retry: %s", exc)
                backoff = min(backoff * 2, 5.0)
                self._stopped.wait(backoff)
                continue
            except Exception:  # noqa: BLE001 - keep relaying; the rows stay unpublished
                log.exception("outbox relay failed; rows stay unpublished")
                self._stopped.wait(backoff)
                continue
            self._wake.wait(self.poll_interval)

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._unsubscribe()
        self.relay.close()


def main() -> None:
    from services.common.logs import configure_logging

    parser = argparse.ArgumentParser(description="Publish a service's outbox to RabbitMQ.")
    parser.add_argument("service")
    parser.add_argument("--once", action="store_true", help="publish what is pending, then exit")
    args = parser.parse_args()
    configure_logging(f"{args.service}-relay")
    relay = OutboxRelay(database_for(args.service))
    if args.once:
        print(f"published {relay.drain()} events")
        relay.close()
        return
    loop = RelayLoop(relay, poll_interval=0.2)
    try:
        loop.run()
    except KeyboardInterrupt:
        loop.stop()


if __name__ == "__main__":
    main()
