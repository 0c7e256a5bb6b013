"""One compatibility fix for nameko 2.14.1 with amqp 5 (pinned versions), applied on import.

nameko's QueueConsumer acks and requeues a message only "if the connection is alive"
and catches `amqp.exceptions.ConnectionError`; with amqp 5 a broker that has just gone
away surfaces as the builtin `ConnectionResetError` / `BrokenPipeError` instead. That
exception escaped into the worker thread and nameko killed the whole container, so a
broker restart stopped every service. An ack that cannot be sent is harmless: the broker
redelivers the unacked message after reconnection and the inbox absorbs the repeat.
"""

from __future__ import annotations

import logging
from typing import Any

from amqp.exceptions import ConnectionError as AmqpConnectionError
from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)

_LOST = (AmqpConnectionError, OSError)


def _settle(action: str, settle: Any, message: Any) -> None:
    if not message.channel.connection:
        return
    try:
        settle()
    except _LOST as exc:
        log.warning("connection lost before %s; the broker will redeliver the message: %s",
                    action, exc)


def _ack_message(self: QueueConsumer, message: Any) -> None:
    _settle("ack", message.ack, message)


def _requeue_message(self: QueueConsumer, message: Any) -> None:
    _settle("requeue", message.requeue, message)


QueueConsumer.ack_message = _ack_message  # type: ignore[method-assign]
QueueConsumer.requeue_message = _requeue_message  # type: ignore[method-assign]
