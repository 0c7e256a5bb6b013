"""`event_handler`: nameko's service-pool event handler made reliable.

nameko's own handler acks a failing message (the event is lost) or, with
`requeue_on_error`, redelivers it forever. This one counts attempts in a header: a
failing message is re-published to its queue with the count raised (after a short
backoff) and the original acked; at `max_attempts` (default 5, env
`XUEJI_MAX_ATTEMPTS`), or at once for an invalid event, it goes to the dead-letter
queue `<queue>.dead`, where `python -m services.common.deadletters` lists and replays
it. Publishing to the dead-letter queue is confirmed before the original is acked.

`batch_event_handler` is the same handler for high-volume queues: the method receives a
list of bodies and applies them in one transaction (see `BatchEventHandler`). A message may be a
pack (a JSON array of envelopes, `relay.packed`): a batch takes its events; a failing batch, or a
single-event handler, re-publishes them one per message first.

`raw_consumer` consumes another system's messages undecoded (`RawConsumer`), with the same retries.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from kombu import Exchange, Queue
from nameko.amqp.publish import get_producer
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint
from nameko.messaging import QueueConsumer

import services.common.nameko_compat  # noqa: F401  (applies the ack fix)
from services.common.envelope import envelopes_in
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

    def handle_message(self, body: Any, message: Any) -> None:
        if isinstance(body, list):  # a pack (relay.packed): here each event goes on its own
            self._split_pack(body, message)
            return
        super().handle_message(body, message)

    def _split_pack(self, bodies: list[Any], message: Any) -> None:
        """Re-publish each event of a pack as its own message on this queue (confirmed), then ack
        the pack, so each event gets its own retries and dead letter. A crash in between delivers
        the pack again: the inbox absorbs the repeats."""
        try:
            with get_producer(self.amqp_uri, True, None, None, {"confirm_publish": True}) as producer:
                for body in bodies:
                    producer.publish(body, exchange="", routing_key=self.queue.name, serializer="json",
                                     headers=dict(message.headers or {}), delivery_mode=2,
                                     retry=True, retry_policy={"max_retries": 3})
        except Exception:  # noqa: BLE001 - could not republish: let the broker redeliver the pack
            log.exception("could not split a pack of %s events; requeueing it", len(bodies))
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)

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


def default_batch_size() -> int:
    return int(os.environ.get("XUEJI_BATCH_SIZE", "200"))


def default_batch_linger() -> float:
    return float(os.environ.get("XUEJI_BATCH_LINGER", "0.05"))


LINGER_STEP = 0.005


class BatchQueueConsumer(QueueConsumer):
    """A second consumer connection for batch handlers.

    nameko's prefetch is the container's `max_workers` (10), which would cap a batch at
    10 messages; batch queues get room for two full batches instead. Messages are handed
    to the handler's buffer directly: buffering is cheap, so no green thread per message.
    """

    @property
    def prefetch_count(self) -> int:
        return 2 * default_batch_size()

    def handle_message(self, provider: Any, body: Any, message: Any) -> None:
        provider.handle_message(body, message)


class BatchEventHandler(ReliableEventHandler):
    """Hands the method a list of bodies, so a use case applies many events in one transaction.

    A message arriving while no batch of this handler is running starts one at once (no
    added latency when idle); messages arriving meanwhile wait and form the next batch, up
    to `batch_size` (env `XUEJI_BATCH_SIZE`, 200), which under load waits up to
    `XUEJI_BATCH_LINGER` (0.05 s) to fill. So batches grow with the load. The use
    case must be all-or-nothing (one transaction with every event's inbox record): if a
    batch fails, each of its messages is run again on its own, through the same counted
    retries and dead-letter queue as `event_handler`, so one bad event never holds back
    or dead-letters the others.
    """

    queue_consumer = BatchQueueConsumer()

    def __init__(self, source_service: str, event_type: str, batch_size: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(source_service, event_type, **kwargs)
        self.batch_size = batch_size
        self._pending: list[tuple[Any, Any]] = []
        self._pending_events = 0
        self._running = False
        self._last_done = -math.inf

    def handle_message(self, body: Any, message: Any) -> None:
        self._pending.append((body, message))
        self._pending_events += len(envelopes_in(body))
        if not self._running:
            self._start_batch()

    def _start_batch(self) -> None:
        self._running = True
        self.container.spawn_managed_thread(self._gather, identifier=f"{type(self).__name__}.batch")

    def _gather(self) -> None:
        """Take the next batch. Under load (the last batch ended a moment ago) first let it fill
        for up to `XUEJI_BATCH_LINGER` seconds: every batch costs its queries and its commit
        whatever its size, and without the wait a busy consumer keeps running batches of a few
        events. Idle, a message goes at once."""
        size = self.batch_size or default_batch_size()
        linger = default_batch_linger()
        if time.monotonic() - self._last_done < linger:
            until = time.monotonic() + linger
            while self._pending_events < size and time.monotonic() < until:
                time.sleep(LINGER_STEP)  # green under eventlet
        # `size` counts events: a pack (a list body) counts each of its events, and is never cut.
        taken = events = 0
        while taken < len(self._pending) and (taken == 0 or events < size):
            events += len(envelopes_in(self._pending[taken][0]))
            taken += 1
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        self._pending_events -= events
        self._spawn_batch(batch)

    def _spawn_batch(self, batch: list[tuple[Any, Any]]) -> None:
        bodies = [event for body, _ in batch for event in envelopes_in(body)]
        # One worker, one context: the first message's headers (caller, correlation id).
        context_data = self.unpack_message_headers(batch[0][1])
        try:
            self.container.spawn_worker(self, (bodies,), {}, context_data=context_data,
                                        handle_result=partial(self._batch_done, batch))
        except ContainerBeingKilled:
            for _, message in batch:
                self.queue_consumer.requeue_message(message)
            self._running = False

    def _batch_done(self, batch: list[tuple[Any, Any]], worker_ctx: Any, result: Any = None,
                    exc_info: Any = None) -> tuple[Any, Any]:
        self._last_done = time.monotonic()
        if exc_info is None:
            for _, message in batch:
                self.queue_consumer.ack_message(message)
        else:
            log.warning("batch of %s failed (%s: %s); applying its events one by one", len(batch),
                        exc_info[0].__name__, exc_info[1], extra={"fields": {"queue": self.queue.name}})
            for body, message in batch:
                if isinstance(body, list):
                    self._split_pack(body, message)
                else:
                    self._spawn_single(body, message)
        self._running = False
        if self._pending:
            self._start_batch()
        return result, exc_info

    def _spawn_single(self, body: Any, message: Any) -> None:
        try:
            self.container.spawn_worker(self, ([body],), {},
                                        context_data=self.unpack_message_headers(message),
                                        handle_result=partial(self.handle_result, message))
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)


event_handler = ReliableEventHandler.decorator
batch_event_handler = BatchEventHandler.decorator


# ---- raw messages: another system's protocol, where the exact body bytes matter -------------------

# A retried or replayed copy goes back through the default exchange, so it keeps the routing key
# it first arrived with here (the receiver checks it against the body).
ROUTING_HEADER = "x-xueji-routing-key"


@dataclass(frozen=True)
class RawQueue:
    """Where a raw consumer reads: a durable queue bound to a durable topic exchange."""

    exchange: str
    routing_key: str
    queue: str


class RawQueueConsumer(QueueConsumer):
    """A consumer connection that hands messages over undecoded (kombu's `on_message`): no
    serializer parses or re-encodes a body, and a body that is not JSON cannot break the consumer."""

    def get_consumers(self, consumer_cls: Any, channel: Any) -> Any:
        channel.auto_decode = False  # py-amqp would turn the body into str by its content_encoding
        for provider in self._providers:
            consumer = consumer_cls(queues=[provider.queue],
                                    on_message=partial(self.handle_message, provider, None))
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()


def _arrival_routing_key(message: Any) -> str:
    info = message.delivery_info or {}
    headers = message.headers or {}
    if not info.get("exchange") and ROUTING_HEADER in headers:  # our own retry copy or a replay
        return str(headers[ROUTING_HEADER])
    return str(info.get("routing_key", ""))


class RawConsumer(Entrypoint):
    """Consumes a durable queue; the method gets `(body: bytes, headers: dict, routing_key: str)`.

    `where()` (called at setup, so it may read the environment) names the exchange, routing key
    and queue; the queue and its binding are declared when consuming starts, and `topology`
    declares them too. The message is acked after the worker succeeds; a failure gets the same
    counted retries with backoff and dead-letter queue as `event_handler`. No context data is
    taken from the message: its headers are set by a foreign sender. Decorate with
    `@raw_consumer(where=…)` (a lone function argument would make nameko's decorator bare).
    """

    queue_consumer = RawQueueConsumer()

    def __init__(self, where: Callable[[], RawQueue], max_attempts: int | None = None, **kwargs: Any) -> None:
        self.where = where
        self.max_attempts = max_attempts
        self.queue: Queue | None = None
        super().__init__(**kwargs)

    def setup(self) -> None:
        where = self.where()
        self.queue = Queue(where.queue, exchange=Exchange(where.exchange, type="topic", durable=True),
                           routing_key=where.routing_key, durable=True)
        self.queue_consumer.register_provider(self)

    def stop(self) -> None:
        self.queue_consumer.unregister_provider(self)

    @property
    def amqp_uri(self) -> str:
        return self.container.config["AMQP_URI"]

    def handle_message(self, body: Any, message: Any) -> None:
        raw = message.body
        if isinstance(raw, str):  # decoded by the transport after all: back to the bytes it was
            raw = raw.encode(message.content_encoding or "utf-8")
        headers = {k: v for k, v in (message.headers or {}).items() if not str(k).startswith("x-xueji-")}
        try:
            self.container.spawn_worker(self, (raw, headers, _arrival_routing_key(message)), {},
                                        context_data={}, handle_result=partial(self.handle_result, message))
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_result(self, message: Any, worker_ctx: Any, result: Any = None,
                      exc_info: Any = None) -> tuple[Any, Any]:
        self.handle_message_processed(message, result, exc_info)
        return result, exc_info

    # The same counted retries, backoff and dead-letter queue as event_handler.
    handle_message_processed = ReliableEventHandler.handle_message_processed

    def _publish_copy(self, message: Any, routing_key: str, headers: dict[str, Any],
                      declare: list[Queue]) -> None:
        headers.setdefault(ROUTING_HEADER, _arrival_routing_key(message))
        ReliableEventHandler._publish_copy(self, message, routing_key, headers, declare)  # type: ignore[arg-type]


raw_consumer = RawConsumer.decorator
