"""`event_handler`: nameko's service-pool event handler made reliable.

nameko's own handler acks a failing message (the event is lost) or, with
`requeue_on_error`, redelivers it forever. This one counts attempts in a header: a
failing message is re-published to its queue with the count raised (after a short
backoff) and the original acked; at `max_attempts` (default 5, env
`XUEJI_MAX_ATTEMPTS`), or at once for an invalid event, it goes to the dead-letter
queue `<queue>.dead`, where `python -m services.common.deadletters` lists and replays
it. Publishing to the dead-letter queue is confirmed before the original is acked.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from kombu import Queue
from nameko.amqp.publish import get_producer
from nameko.events import EventHandler

import services.common.nameko_compat  # noqa: F401  (applies the ack fix)
from services.common.errors import InvalidEvent

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-xueji-attempts"
ERROR_HEADER = "x-xueji-error"
ORIGIN_HEADER = "x-xueji-queue"


def dead_letter_queue(queue_name: str) -> str:
    return f"{queue_name}.dead"


def queue_name(source: str, event_type: str, service: str, method: str) -> str:
    """The durable queue of one handler (nameko's service-pool naming)."""
    return f"evt-{source}-{event_type}--{service}.{method}"


def default_max_attempts() -> int:
    return int(os.environ.get("XUEJI_MAX_ATTEMPTS", "5"))


class ReliableEventHandler(EventHandler):
    def __init__(self, source_service: str, event_type: str, max_attempts: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(source_service, event_type, reliable_delivery=True, **kwargs)
        self.max_attempts = max_attempts

    @property
    def amqp_uri(self) -> str:
        return self.container.config["AMQP_URI"]

    def _publish_copy(self, message: Any, routing_key: str, headers: dict[str, Any],
                      declare: list[Queue]) -> None:
        with get_producer(self.amqp_uri, True, None, None, {"confirm_publish": True}) as producer:
            producer.publish(
                message.body,
                exchange="",
                routing_key=routing_key,
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=2,
                declare=declare,
                retry=True,
                retry_policy={"max_retries": 3},
            )

    def handle_message_processed(self, message: Any, result: Any = None,
                                 exc_info: Any = None) -> None:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        headers = dict(message.headers or {})
        attempts = int(headers.get(ATTEMPTS_HEADER, 1))
        limit = self.max_attempts or default_max_attempts()
        poison = issubclass(exc_info[0], InvalidEvent)
        error = f"{exc_info[0].__name__}: {exc_info[1]}"[:1000]
        try:
            if poison or attempts >= limit:
                dead = dead_letter_queue(self.queue.name)
                headers.update({ATTEMPTS_HEADER: attempts, ERROR_HEADER: error,
                                ORIGIN_HEADER: self.queue.name})
                self._publish_copy(message, dead, headers, [Queue(dead, durable=True)])
                log.error("dead-lettered after %s attempt(s): %s", attempts, error,
                          extra={"fields": {"queue": self.queue.name}})
            else:
                # Green sleep under eventlet: 0.5, 1, 2, 4 s — long enough for an event that
                # overtook the one it depends on (another queue) to find it applied.
                time.sleep(min(0.5 * 2 ** (attempts - 1), 8.0))
                headers[ATTEMPTS_HEADER] = attempts + 1
                self._publish_copy(message, self.queue.name, headers, [])
                log.warning("handler failed (attempt %s of %s), retrying: %s",
                            attempts, limit, error, extra={"fields": {"queue": self.queue.name}})
        except Exception:  # noqa: BLE001 - could not republish: let the broker redeliver
            log.exception("could not re-publish a failed message; requeueing it")
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)


event_handler = ReliableEventHandler.decorator
