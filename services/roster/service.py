"""Roster's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.common.caller import require_caller
from services.common.entrypoints import batch_event_handler
from services.common.nameko_deps import (
    CallerProvider,
    DatabaseProvider,
    MetricsProvider,
    Observable,
    OutboxRelayProvider,
)
from services.roster import changes, clearance, codes, handlers, importing, problems, statistics


class RosterService(Observable):
    name = "roster"

    db = DatabaseProvider("roster")
    caller = CallerProvider()
    relay = OutboxRelayProvider("roster")
    observer = MetricsProvider("roster")

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
    def search_students(self, q: str = "", page: int = 1, per_page: int = 20, class_code: str = "",
                        status: str = "") -> dict[str, Any]:
        return handlers.search_students(self.db, require_caller(self.caller), q, page, per_page, class_code, status)

    @rpc
    def statistics(self, by: str) -> dict[str, Any]:
        return statistics.statistics(self.db, require_caller(self.caller), by)

    @rpc
    def student_audit(self, student_number: str) -> list[dict[str, Any]]:
        return statistics.student_audit(self.db, require_caller(self.caller), student_number)

    @rpc
    def status_history(self, student_number: str) -> list[dict[str, Any]]:
        return handlers.status_history(self.db, require_caller(self.caller), student_number)

    @rpc
    def import_template(self) -> dict[str, str]:
        return importing.import_template(self.db, require_caller(self.caller))

    @rpc
    def import_students(self, content: str, valid_only: bool = False,
                        update_existing: bool = False) -> dict[str, Any]:
        return importing.import_students(self.db, require_caller(self.caller), content,
                                         bool(valid_only), bool(update_existing))

    @rpc
    def export_students(self, q: str = "", class_code: str = "", status: str = "") -> dict[str, Any]:
        return importing.export_students(self.db, require_caller(self.caller), q, class_code, status)

    @rpc
    def code_tables(self, include_divisions: bool = False) -> dict[str, Any]:
        return codes.code_tables(self.db, require_caller(self.caller), bool(include_divisions))

    @rpc
    def save_code(self, table: str, code: str, label: str, active: bool = True) -> dict[str, Any]:
        return codes.save_code(self.db, require_caller(self.caller), table, code, label, bool(active))

    @rpc
    def verify_audit_chain(self) -> dict[str, Any]:
        return codes.verify_audit(self.db, require_caller(self.caller))

    @rpc
    def scan_duplicates(self) -> dict[str, int]:
        return problems.scan(self.db, require_caller(self.caller))

    @rpc
    def list_problem_records(self, state: str = "open") -> list[dict[str, Any]]:
        return problems.list_problems(self.db, require_caller(self.caller), state)

    @rpc
    def merge_duplicate(self, problem_id: int, keep: str, remove: str, evidence: str) -> dict[str, Any]:
        return problems.merge(self.db, require_caller(self.caller), int(problem_id), keep, remove, evidence)

    @rpc
    def dismiss_problem_record(self, problem_id: int, note: str) -> dict[str, Any]:
        return problems.dismiss(self.db, require_caller(self.caller), int(problem_id), note)

    @rpc
    def student_record(self, student_number: str) -> dict[str, Any]:
        return changes.student_record(self.db, require_caller(self.caller), student_number)

    @rpc
    def field_policies(self) -> list[dict[str, Any]]:
        return changes.field_policies(self.db, require_caller(self.caller))

    @rpc
    def set_field_policy(self, field: str, student: str, staff: str) -> dict[str, Any]:
        return changes.set_field_policy(self.db, require_caller(self.caller), field, student, staff)

    @rpc
    def update_student(self, student_number: str, values: dict[str, Any], reason: str = "") -> dict[str, Any]:
        return changes.update_student(self.db, require_caller(self.caller), student_number, values, reason)

    @rpc
    def submit_change_request(self, student_number: str, values: dict[str, Any],
                              evidence: str = "") -> dict[str, Any]:
        return changes.submit_change_request(self.db, require_caller(self.caller), student_number, values,
                                             evidence)

    @rpc
    def list_change_requests(self, state: str = "") -> list[dict[str, Any]]:
        return changes.list_change_requests(self.db, require_caller(self.caller), state)

    @rpc
    def review_change_request(self, request_id: int, approve: bool, note: str = "") -> dict[str, Any]:
        return changes.review_change_request(self.db, require_caller(self.caller), int(request_id), bool(approve),
                                             note)

    @rpc
    def list_clearance_problems(self) -> list[dict[str, Any]]:
        return clearance.list_problems(self.db, require_caller(self.caller))

    @rpc
    def reprocess_clearance_problem(self, problem_id: int) -> dict[str, Any]:
        return clearance.reprocess(self.db, require_caller(self.caller), int(problem_id))

    @rpc
    def dismiss_clearance_problem(self, problem_id: int, note: str) -> dict[str, Any]:
        return clearance.dismiss(self.db, require_caller(self.caller), int(problem_id), note)

    @batch_event_handler("clearance", "clearance.completed")
    def on_clearance_completed(self, bodies: list[Any]) -> None:
        clearance.receive_many(self.db, "clearance.completed", bodies)

    @batch_event_handler("clearance", "clearance.revoked")
    def on_clearance_revoked(self, bodies: list[Any]) -> None:
        clearance.receive_many(self.db, "clearance.revoked", bodies)
