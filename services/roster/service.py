"""Roster's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.common.caller import require_caller
from services.common.entrypoints import event_handler
from services.common.nameko_deps import CallerProvider, DatabaseProvider, OutboxRelayProvider
from services.roster import clearance, handlers


class RosterService:
    name = "roster"

    db = DatabaseProvider("roster")
    caller = CallerProvider()
    relay = OutboxRelayProvider("roster")

    @rpc
    def health(self) -> dict[str, Any]:
        return handlers.health(self.db)

    @rpc
    def upsert_org_units(self, units: list[dict[str, Any]]) -> dict[str, int]:
        return handlers.upsert_org_units(self.db, require_caller(self.caller), units)

    @rpc
    def register_students(self, students: list[dict[str, Any]]) -> dict[str, Any]:
        return handlers.register_students(self.db, require_caller(self.caller), students)

    @rpc
    def get_student(self, student_number: str) -> dict[str, Any]:
        return handlers.get_student(self.db, require_caller(self.caller), student_number)

    @rpc
    def search_students(self, q: str = "", page: int = 1, per_page: int = 20) -> dict[str, Any]:
        return handlers.search_students(self.db, require_caller(self.caller), q, page, per_page)

    @rpc
    def status_history(self, student_number: str) -> list[dict[str, Any]]:
        return handlers.status_history(self.db, require_caller(self.caller), student_number)

    @rpc
    def list_clearance_problems(self) -> list[dict[str, Any]]:
        return clearance.list_problems(self.db, require_caller(self.caller))

    @rpc
    def reprocess_clearance_problem(self, problem_id: int) -> dict[str, Any]:
        return clearance.reprocess(self.db, require_caller(self.caller), int(problem_id))

    @rpc
    def dismiss_clearance_problem(self, problem_id: int, note: str) -> dict[str, Any]:
        return clearance.dismiss(self.db, require_caller(self.caller), int(problem_id), note)

    @event_handler("clearance", "clearance.completed")
    def on_clearance_completed(self, body: Any) -> None:
        clearance.receive(self.db, "clearance.completed", body)

    @event_handler("clearance", "clearance.revoked")
    def on_clearance_revoked(self, body: Any) -> None:
        clearance.receive(self.db, "clearance.revoked", body)
