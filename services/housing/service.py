"""Housing's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

import base64
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from services.common.caller import require_caller
from services.common.entrypoints import batch_event_handler, event_handler
from services.common.envelope import parse_envelope
from services.common.errors import Invalid
from services.common.nameko_deps import (
    CallerProvider,
    DatabaseProvider,
    MetricsProvider,
    Observable,
    OutboxRelayProvider,
)
from services.housing import estate, handlers, renames, reports, stays, summaries


def _b64_in(data: str) -> bytes:
    """Workbooks cross RPC (JSON) as base64 text."""
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, TypeError):
        raise Invalid("文件内容格式不正确") from None


def _b64_out(result: dict[str, Any]) -> dict[str, Any]:
    if isinstance(result.get("annotated"), bytes):
        result["annotated"] = base64.b64encode(result["annotated"]).decode()
    return result


class SettingsCheck(DependencyProvider):
    """Reads housing's environment settings as the container sets up, so a mistyped one stops the
    service at start (`handlers.SettingsError`, the setting named) rather than dead-lettering events."""

    def setup(self) -> None:
        self.settings = handlers.check_settings()

    def get_dependency(self, worker_ctx: Any) -> dict[str, bool]:
        return self.settings


class HousingService(Observable):
    name = "housing"

    settings = SettingsCheck()

    db = DatabaseProvider("housing")
    caller = CallerProvider()
    relay = OutboxRelayProvider("housing")
    observer = MetricsProvider("housing")

    @rpc
    def health(self) -> dict[str, Any]:
        return handlers.health(self.db)

    @rpc
    def create_beds(self, beds: list[dict[str, Any]]) -> dict[str, Any]:
        return handlers.create_beds(self.db, require_caller(self.caller), beds)

    @rpc
    def assign_bed(self, student_number: str, bed_label: str, override_reason: str | None = None) -> dict[str, Any]:
        return handlers.assign_bed(self.db, require_caller(self.caller), student_number, bed_label, override_reason)

    @rpc
    def occupancy(self, student_number: str) -> dict[str, Any]:
        return handlers.occupancy(self.db, require_caller(self.caller), student_number)

    @rpc
    def bed_history(self, student_number: str) -> list[dict[str, Any]]:
        return handlers.bed_history(self.db, require_caller(self.caller), student_number)

    @rpc
    def holders_who_left(self) -> list[dict[str, Any]]:
        return handlers.holders_who_left(self.db, require_caller(self.caller))

    # --- estate (H1) ---
    @rpc
    def save_campus(self, code: str, name: str) -> dict[str, Any]:
        return estate.save_campus(self.db, require_caller(self.caller), code, name)

    @rpc
    def choices(self) -> dict[str, list[dict[str, str]]]:
        require_caller(self.caller)
        return estate.choices()

    @rpc
    def list_campuses(self) -> list[dict[str, Any]]:
        return estate.list_campuses(self.db, require_caller(self.caller))

    @rpc
    def save_building(self, data: dict[str, Any]) -> dict[str, Any]:
        return estate.save_building(self.db, require_caller(self.caller), data)

    @rpc
    def list_buildings(self) -> list[dict[str, Any]]:
        return estate.list_buildings(self.db, require_caller(self.caller))

    @rpc
    def building_rooms(self, building_code: str) -> dict[str, Any]:
        return estate.building_rooms(self.db, require_caller(self.caller), building_code)

    @rpc
    def save_room(self, data: dict[str, Any]) -> dict[str, Any]:
        return estate.save_room(self.db, require_caller(self.caller), data)

    @rpc
    def delete_bed(self, label: str) -> dict[str, Any]:
        return estate.delete_bed(self.db, require_caller(self.caller), label)

    @rpc
    def allocate_rooms(self, rooms: list[dict[str, Any]], college_code: str | None) -> dict[str, Any]:
        return estate.allocate_rooms(self.db, require_caller(self.caller), rooms, college_code)

    @rpc
    def allocate_beds(self, labels: list[str], college_code: str | None) -> dict[str, Any]:
        return estate.allocate_beds(self.db, require_caller(self.caller), labels, college_code)

    @rpc
    def import_inventory(self, data_b64: str) -> dict[str, Any]:
        return _b64_out(estate.import_inventory(self.db, require_caller(self.caller), _b64_in(data_b64)))

    @rpc
    def sheet_template(self, kind: str) -> str:
        require_caller(self.caller)
        makers = {"inventory": estate.inventory_template, "assignment": stays.assignment_template}
        if kind not in makers:
            raise Invalid("没有这种模板")
        return base64.b64encode(makers[kind]()).decode()

    # --- stays (H2, H3, H5) ---
    @rpc
    def move_bed(self, student_number: str, target: str, override_reason: str | None = None) -> dict[str, Any]:
        return stays.move_bed(self.db, require_caller(self.caller), student_number, target, override_reason)

    @rpc
    def swap_beds(self, first: str, second: str) -> dict[str, Any]:
        return stays.swap_beds(self.db, require_caller(self.caller), first, second)

    @rpc
    def preview_moves(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return stays.preview_moves(self.db, require_caller(self.caller), rows)

    @rpc
    def move_many(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return stays.move_many(self.db, require_caller(self.caller), rows)

    @rpc
    def import_assignments(self, data_b64: str, apply: bool = False) -> dict[str, Any]:
        return _b64_out(stays.import_assignments(self.db, require_caller(self.caller), _b64_in(data_b64), apply))

    @rpc
    def allocate_intake(self, selection: dict[str, Any], apply: bool = False) -> dict[str, Any]:
        return stays.allocate_intake(self.db, require_caller(self.caller), selection, apply)

    @rpc
    def check_in(self, student_number: str) -> dict[str, Any]:
        return stays.check_in(self.db, require_caller(self.caller), student_number)

    @rpc
    def check_out(self, student_number: str) -> dict[str, Any]:
        return stays.check_out(self.db, require_caller(self.caller), student_number)

    @rpc
    def check_out_many(self, selection: dict[str, Any]) -> dict[str, Any]:
        return stays.check_out_many(self.db, require_caller(self.caller), selection)

    @rpc
    def checked_out(self, student_number: str) -> dict[str, Any]:
        return stays.checked_out(self.db, require_caller(self.caller), student_number)

    # --- reports ---
    @rpc
    def occupancy_report(self) -> dict[str, Any]:
        return reports.occupancy_report(self.db, require_caller(self.caller))

    @rpc
    def export_report(self) -> str:
        return base64.b64encode(reports.export_report(self.db, require_caller(self.caller))).decode()

    @rpc
    def export_holders_who_left(self) -> str:
        rows = handlers.holders_who_left(self.db, require_caller(self.caller))
        return base64.b64encode(reports.holders_who_left_export(rows)).decode()

    @rpc
    def residents(self, q: str = "", page: int = 1, per_page: int = 20, building: str = "", college: str = "",
                  housed: bool = False) -> dict[str, Any]:
        return reports.residents(self.db, require_caller(self.caller), q, page, per_page, building=building,
                                 college=college, housed=bool(housed))

    @rpc
    def home_counts(self) -> dict[str, int]:
        return summaries.home_counts(self.db, require_caller(self.caller))

    @rpc
    def stays_of_bed(self, label: str) -> list[dict[str, Any]]:
        return reports.stays_of_bed(self.db, require_caller(self.caller), label)

    # --- status changes (issue 5): beds for roster's lists, revocations that could not restore a bed ---
    @rpc
    def beds_held(self, student_numbers: list[str]) -> dict[str, dict[str, Any]]:
        return handlers.beds_held(self.db, require_caller(self.caller), student_numbers)

    @rpc
    def restore_problems(self) -> list[dict[str, Any]]:
        return handlers.restore_problems(self.db, require_caller(self.caller))

    @event_handler("roster", "student.registered")
    def on_student_registered(self, body: Any) -> None:
        handlers.on_student_registered(self.db, parse_envelope(body))

    @event_handler("roster", "student.class_changed")
    def on_student_class_changed(self, body: Any) -> None:
        handlers.on_student_class_changed(self.db, parse_envelope(body))

    @event_handler("roster", "student.number_changed")
    def on_student_number_changed(self, body: Any) -> None:
        renames.on_student_number_changed(self.db, parse_envelope(body))

    @batch_event_handler("roster", "student.status_changed")
    def on_student_status_changed(self, bodies: list[Any]) -> None:
        handlers.on_student_status_changed(self.db, *map(parse_envelope, bodies))
