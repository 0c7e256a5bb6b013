"""Aid's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.aid import handlers
from services.common.caller import require_caller
from services.common.entrypoints import event_handler
from services.common.envelope import parse_envelope
from services.common.nameko_deps import CallerProvider, DatabaseProvider, OutboxRelayProvider


class AidService:
    name = "aid"

    db = DatabaseProvider("aid")
    caller = CallerProvider()
    relay = OutboxRelayProvider("aid")

    @rpc
    def health(self) -> dict[str, Any]:
        return handlers.health(self.db)

    @rpc
    def enrolled_student(self, student_number: str) -> dict[str, Any]:
        return handlers.enrolled_student(self.db, require_caller(self.caller), student_number)

    @event_handler("roster", "student.registered")
    def on_student_registered(self, body: Any) -> None:
        handlers.on_student_registered(self.db, parse_envelope(body))

    @event_handler("roster", "student.status_changed")
    def on_student_status_changed(self, body: Any) -> None:
        handlers.on_student_status_changed(self.db, parse_envelope(body))
