"""Transfer's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.common.caller import require_caller
from services.common.entrypoints import batch_event_handler, event_handler
from services.common.envelope import parse_envelope
from services.common.nameko_deps import (
    CallerProvider,
    DatabaseProvider,
    MetricsProvider,
    Observable,
    OutboxRelayProvider,
)
from services.transfer import handlers


class TransferService(Observable):
    name = "transfer"

    db = DatabaseProvider("transfer")
    caller = CallerProvider()
    relay = OutboxRelayProvider("transfer")
    observer = MetricsProvider("transfer")

    @rpc
    def health(self) -> dict[str, Any]:
        return handlers.health(self.db)

    @rpc
    def student_for_matching(self, student_number: str) -> dict[str, Any]:
        return handlers.student_for_matching(self.db, require_caller(self.caller), student_number)

    @event_handler("roster", "student.registered")
    def on_student_registered(self, body: Any) -> None:
        handlers.on_student_registered(self.db, parse_envelope(body))

    @event_handler("roster", "student.class_changed")
    def on_student_class_changed(self, body: Any) -> None:
        handlers.on_student_class_changed(self.db, parse_envelope(body))

    @batch_event_handler("roster", "student.status_changed")
    def on_student_status_changed(self, bodies: list[Any]) -> None:
        handlers.on_student_status_changed(self.db, *map(parse_envelope, bodies))
