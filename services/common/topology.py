"""Declares the exchanges and durable queues of every event handler before anything publishes.

Events are published without `mandatory`, so an event sent to an exchange with no bound
queue is dropped. The deploy step (`python -m services.common.topology`) declares every
handler's queue (and its dead-letter queue) from the service classes themselves, so an
event published while a consumer is stopped, or has never run, is kept. This covers the
outside contracts too: the clearance system's `clearance.events` exchange and roster's
queues bound to it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import amqp
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from services.common.entrypoints import RawConsumer, ReliableEventHandler, dead_letter_queue, queue_name
from services.common.relay import amqp_connection, amqp_uri


@dataclass(frozen=True)
class Binding:
    exchange: str
    routing_key: str
    queue: str


def bindings_of(service_classes: Iterable[Any]) -> list[Binding]:
    found = []
    for cls in service_classes:
        for attr in sorted(vars(cls)):
            method = getattr(cls, attr)
            for ep in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(ep, RawConsumer):  # another system's protocol (e.g. the transfer inbox)
                    where = ep.where()
                    found.append(Binding(exchange=where.exchange, routing_key=where.routing_key, queue=where.queue))
                elif isinstance(ep, ReliableEventHandler):
                    found.append(Binding(
                        exchange=f"{ep.source_service}.events",
                        routing_key=ep.event_type,
                        queue=queue_name(ep.source_service, ep.event_type, cls.name, attr),
                    ))
    return found


def declare(uri: str, bindings: Iterable[Binding]) -> list[Binding]:
    conn = amqp_connection(uri)
    try:
        channel = conn.channel()
        declared = []
        for b in bindings:
            channel.exchange_declare(b.exchange, "topic", durable=True, auto_delete=False)
            channel.queue_declare(b.queue, durable=True, auto_delete=False)
            channel.queue_bind(b.queue, b.exchange, b.routing_key)
            channel.queue_declare(dead_letter_queue(b.queue), durable=True, auto_delete=False)
            declared.append(b)
        return declared
    finally:
        conn.collect()


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    messages: int | None  # None: the queue does not exist
    consumers: int | None
    dead: int | None


def depths(uri: str, queues: Iterable[str]) -> list[QueueDepth]:
    """Ready messages and consumers of each queue and its dead-letter queue (passive: creates nothing)."""
    conn = amqp_connection(uri)
    try:
        channel = conn.channel()

        def peek(queue: str) -> tuple[int, int] | None:
            nonlocal channel
            try:
                _, messages, consumers = channel.queue_declare(queue, passive=True)
                return messages, consumers
            except amqp.exceptions.NotFound:
                channel = conn.channel()  # the broker closed the channel
                return None

        found = []
        for queue in queues:
            main_queue, dead = peek(queue), peek(dead_letter_queue(queue))
            found.append(QueueDepth(queue, main_queue[0] if main_queue else None,
                                    main_queue[1] if main_queue else None, dead[0] if dead else None))
        return found
    finally:
        conn.collect()


def main() -> None:
    from services.catalog import all_service_classes

    parser = argparse.ArgumentParser(description="Declare exchanges and queues of all handlers.")
    parser.add_argument("--uri", default=None)
    args = parser.parse_args()
    for b in declare(args.uri or amqp_uri(), bindings_of(all_service_classes())):
        print(f"{b.exchange:24} {b.routing_key:28} -> {b.queue}")


if __name__ == "__main__":
    main()
