"""Operator tool for dead letters: list them, and replay them to their queue.

    python -m services.common.deadletters list
    python -m services.common.deadletters replay [--queue QUEUE] [--event-id ID]

Replay moves messages from `<queue>.dead` back to `<queue>` with the attempt count
reset; the handler's inbox makes a replay of an already applied event harmless.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import amqp

from services.common.entrypoints import ATTEMPTS_HEADER, ERROR_HEADER, dead_letter_queue
from services.common.relay import amqp_connection, amqp_uri
from services.common.topology import bindings_of


@dataclass
class DeadLetter:
    queue: str
    event_id: str | None
    error: str
    attempts: int
    body: str


def _event_id(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("event_id") if isinstance(data, dict) else None


def _drain(channel: amqp.Channel, queue: str) -> list[amqp.Message]:
    messages = []
    while (msg := channel.basic_get(queue, no_ack=False)) is not None:
        messages.append(msg)
    return messages


def list_dead_letters(uri: str, queues: list[str]) -> list[DeadLetter]:
    conn = amqp_connection(uri)
    try:
        channel = conn.channel()
        found = []
        for queue in queues:
            channel.queue_declare(dead_letter_queue(queue), durable=True, auto_delete=False)
            messages = _drain(channel, dead_letter_queue(queue))
            for msg in messages:
                body = msg.body.decode() if isinstance(msg.body, bytes) else msg.body
                headers: dict[str, Any] = msg.properties.get("application_headers") or {}
                found.append(DeadLetter(queue, _event_id(body), str(headers.get(ERROR_HEADER, "")),
                                        int(headers.get(ATTEMPTS_HEADER, 0)), body))
            # Looking must not consume: put them all back.
            channel.close()
            channel = conn.channel()
        return found
    finally:
        conn.collect()


def replay(uri: str, queues: list[str], event_id: str | None = None) -> int:
    conn = amqp_connection(uri)
    replayed = 0
    try:
        channel = conn.channel()
        channel.confirm_select()
        for queue in queues:
            dead = dead_letter_queue(queue)
            _, waiting, _ = channel.queue_declare(dead, durable=True, auto_delete=False)
            # Only what was there at the start: a replayed event that fails again at once
            # comes back to this queue and must not be replayed again in the same run.
            for _ in range(waiting):
                msg = channel.basic_get(dead, no_ack=False)
                if msg is None:
                    break
                body = msg.body.decode() if isinstance(msg.body, bytes) else msg.body
                if event_id and _event_id(body) != event_id:
                    continue  # left unacked: returns to the dead-letter queue on close
                headers = dict(msg.properties.get("application_headers") or {})
                headers[ATTEMPTS_HEADER] = 1
                headers.pop(ERROR_HEADER, None)
                copy = amqp.Message(body, content_type=msg.properties.get("content_type"),
                                    content_encoding=msg.properties.get("content_encoding"),
                                    application_headers=headers, delivery_mode=2)
                channel.basic_publish_confirm(copy, exchange="", routing_key=queue)
                channel.basic_ack(msg.delivery_tag)
                replayed += 1
        return replayed
    finally:
        conn.collect()


def main() -> None:
    from services.catalog import all_service_classes

    parser = argparse.ArgumentParser(description="List or replay dead-lettered events.")
    parser.add_argument("action", choices=["list", "replay"])
    parser.add_argument("--queue", help="one handler queue (default: all)")
    parser.add_argument("--event-id", help="replay only this event")
    parser.add_argument("--uri", default=None)
    args = parser.parse_args()
    uri = args.uri or amqp_uri()
    queues = [args.queue] if args.queue else [b.queue for b in bindings_of(all_service_classes())]
    if args.action == "list":
        letters = list_dead_letters(uri, queues)
        for d in letters:
            print(f"{d.queue}\t{d.event_id}\tattempts={d.attempts}\t{d.error}")
        print(f"{len(letters)} dead letter(s)")
    else:
        print(f"replayed {replay(uri, queues, args.event_id)} message(s)")


if __name__ == "__main__":
    main()
