"""Housing's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.common.caller import require_caller
from services.common.entrypoints import event_handler
from services.common.envelope import parse_envelope
from services.common.nameko_deps import CallerProvider, DatabaseProvider, OutboxRelayProvider
from services.housing import handlers


class HousingService:
    name = "housing"

    db = DatabaseProvider("housing")
    caller = CallerProvider()
    relay = OutboxRelayProvider("housing")

    @rpc
    def health(self) -> dict[str, Any]:
        return handlers.health(self.db)

    @rpc
    def create_beds(self, beds: list[dict[str, Any]]) -> dict[str, Any]:
        return handlers.create_beds(self.db, require_caller(self.caller), beds)

    @rpc
    def assign_bed(self, student_number: str, bed_label: str) -> dict[str, Any]:
        return handlers.assign_bed(self.db, require_caller(self.caller), student_number, bed_label)

    @rpc
    def occupancy(self, student_number: str) -> dict[str, Any]:
        return handlers.occupancy(self.db, require_caller(self.caller), student_number)

    @rpc
    def bed_history(self, student_number: str) -> list[dict[str, Any]]:
        return handlers.bed_history(self.db, require_caller(self.caller), student_number)

    @rpc
    def holders_who_left(self) -> list[dict[str, Any]]:
        return handlers.holders_who_left(self.db, require_caller(self.caller))

    @event_handler("roster", "student.registered")
    def on_student_registered(self, body: Any) -> None:
        handlers.on_student_registered(self.db, parse_envelope(body))

    @event_handler("roster", "student.status_changed")
    def on_student_status_changed(self, body: Any) -> None:
        handlers.on_student_status_changed(self.db, parse_envelope(body))
