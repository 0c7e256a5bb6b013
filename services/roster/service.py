"""Roster's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

import os
from typing import Any

from nameko.rpc import rpc
from nameko.timer import timer

from services.common.caller import require_caller, system_caller
from services.common.entrypoints import batch_event_handler
from services.common.nameko_deps import (
    CallerProvider,
    DatabaseProvider,
    MetricsProvider,
    Observable,
    OutboxRelayProvider,
)
from services.roster import (
    batch_changes,
    calendar_jobs,
    changes,
    class_moves,
    clearance,
    codes,
    handlers,
    importing,
    number_mapping,
    org_units,
    photos,
    problems,
    settings,
    statistics,
    status_changes,
    summaries,
    transfers_in_out,
)


class RosterService(Observable):
    name = "roster"

    db = DatabaseProvider("roster")
    caller = CallerProvider()
    relay = OutboxRelayProvider("roster")
    observer = MetricsProvider("roster")

    @rpc
    def health(self) -> dict[str, Any]:
        return handlers.health(self.db)

    # 组织机构 (services/roster/org_units.py)
    @rpc
    def upsert_org_units(self, units: list[dict[str, Any]], new_only: bool = False) -> dict[str, int]:
        return org_units.upsert_org_units(self.db, require_caller(self.caller), units, new_only)

    @rpc
    def list_org_units(self) -> dict[str, Any]:
        return org_units.list_org_units(self.db, require_caller(self.caller))

    @rpc
    def delete_org_unit(self, code: str) -> dict[str, Any]:
        return org_units.delete_org_unit(self.db, require_caller(self.caller), code)

    @rpc
    def org_units_template(self) -> dict[str, str]:
        return org_units.org_units_template(self.db, require_caller(self.caller))

    @rpc
    def preview_org_units_import(self, content: str) -> dict[str, Any]:
        return org_units.preview_org_units_import(self.db, require_caller(self.caller), content)

    @rpc
    def apply_org_units_import(self, content: str) -> dict[str, Any]:
        return org_units.apply_org_units_import(self.db, require_caller(self.caller), content)

    @rpc
    def register_students(self, students: list[dict[str, Any]]) -> dict[str, Any]:
        return importing.register_students(self.db, require_caller(self.caller), students)

    @rpc
    def get_student(self, student_number: str) -> dict[str, Any]:
        return handlers.get_student(self.db, require_caller(self.caller), student_number)

    @rpc
    def search_students(self, q: str = "", page: int = 1, per_page: int = 20, class_code: str = "",
                        status: str = "", college_code: str = "", grade: str = "", gender: str = "",
                        ethnicity: str = "", counted: bool = False) -> dict[str, Any]:
        return handlers.search_students(self.db, require_caller(self.caller), q, page, per_page, class_code, status,
                                        college_code=college_code, grade=grade, gender=gender, ethnicity=ethnicity,
                                        counted=bool(counted))

    @rpc
    def statistics(self, by: str) -> dict[str, Any]:
        return statistics.statistics(self.db, require_caller(self.caller), by)

    # 首页与数据看板 (issue 9): counts in the caller's scope (services/roster/summaries.py)
    @rpc
    def home_counts(self) -> dict[str, int]:
        return summaries.home_counts(self.db, require_caller(self.caller))

    @rpc
    def status_change_counts(self, months: int = 12, until: str = "") -> dict[str, Any]:
        return summaries.status_change_counts(self.db, require_caller(self.caller), months, until)

    @rpc
    def list_status_changes(self, month: str, kind: str = "", page: int = 1, per_page: int = 20) -> dict[str, Any]:
        return summaries.status_changes(self.db, require_caller(self.caller), month, kind, page, per_page)

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

    # 学籍异动 (issue 5): single changes, approval, revocation, evidence, settings
    @rpc
    def status_kinds(self) -> list[dict[str, Any]]:
        return status_changes.status_kinds(require_caller(self.caller))

    @rpc
    def apply_status_change(self, student_number: str, kind: str, effective_on: str, reason: str,
                            evidence: str = "", attachments: list[dict[str, Any]] | None = None,
                            details: dict[str, Any] | None = None) -> dict[str, Any]:
        return status_changes.apply_status_change(self.db, require_caller(self.caller), student_number, kind,
                                                  effective_on, reason, evidence, attachments, details)

    @rpc
    def revoke_status_change(self, change_id: int, reason: str) -> dict[str, Any]:
        return status_changes.revoke_status_change(self.db, require_caller(self.caller), int(change_id), reason)

    @rpc
    def list_status_applications(self, state: str = "pending") -> list[dict[str, Any]]:
        return status_changes.list_applications(self.db, require_caller(self.caller), state)

    @rpc
    def decide_status_application(self, application_id: int, approve: bool, note: str = "") -> dict[str, Any]:
        return status_changes.decide_application(self.db, require_caller(self.caller), int(application_id),
                                                 bool(approve), note)

    @rpc
    def status_timeline(self, student_number: str) -> list[dict[str, Any]]:
        return status_changes.timeline(self.db, require_caller(self.caller), student_number)

    @rpc
    def status_attachment(self, attachment_id: int) -> dict[str, Any]:
        return status_changes.attachment(self.db, require_caller(self.caller), int(attachment_id))

    @rpc
    def roster_settings(self) -> list[dict[str, Any]]:
        return settings.read_settings(self.db, require_caller(self.caller))

    @rpc
    def save_roster_setting(self, key: str, value: Any) -> dict[str, Any]:
        return settings.save_setting(self.db, require_caller(self.caller), key, value)

    # 调班 (issue 5, R9): class moves
    @rpc
    def move_class(self, student_number: str, to_class: str, reason: str) -> dict[str, Any]:
        return class_moves.move_class(self.db, require_caller(self.caller), student_number, to_class, reason)

    @rpc
    def class_moves(self, student_number: str) -> list[dict[str, Any]]:
        return class_moves.class_moves(self.db, require_caller(self.caller), student_number)

    # 批量学籍异动 (issue 5): status changes from Excel, preview then all-or-nothing apply
    @rpc
    def status_batch_template(self) -> dict[str, str]:
        return batch_changes.status_batch_template(self.db, require_caller(self.caller))

    @rpc
    def preview_status_batch(self, content: str) -> dict[str, Any]:
        return batch_changes.preview_status_batch(self.db, require_caller(self.caller), content)

    @rpc
    def apply_status_batch(self, content: str) -> dict[str, Any]:
        return batch_changes.apply_status_batch(self.db, require_caller(self.caller), content)

    # 学籍日历 (issue 5, R4 R16–R18): calendar jobs and their timer, absences, reporting, pending graduations
    @rpc
    def calendar_preview(self, job: str, on: str = "") -> dict[str, Any]:
        return calendar_jobs.preview(self.db, require_caller(self.caller), job, on)

    @rpc
    def calendar_run(self, job: str, on: str = "") -> dict[str, Any]:
        return calendar_jobs.run(self.db, require_caller(self.caller), job, on)

    @rpc
    def calendar_runs(self) -> list[dict[str, Any]]:
        return calendar_jobs.calendar_runs(self.db, require_caller(self.caller))

    @timer(interval=float(os.environ.get("ROSTER_CALENDAR_INTERVAL", "3600")))
    def run_calendar_jobs(self) -> None:
        calendar_jobs.run_due(self.db, system_caller("roster"))

    @rpc
    def record_absences(self, entries: list[dict[str, Any]]) -> dict[str, int]:
        return calendar_jobs.record_absences(self.db, require_caller(self.caller), entries)

    @rpc
    def import_absences(self, content: str) -> dict[str, Any]:
        return calendar_jobs.import_absences(self.db, require_caller(self.caller), content)

    @rpc
    def absence_template(self) -> dict[str, str]:
        return calendar_jobs.absence_template(self.db, require_caller(self.caller))

    @rpc
    def absences(self, student_number: str = "", class_code: str = "") -> list[dict[str, Any]]:
        return calendar_jobs.absences(self.db, require_caller(self.caller), student_number, class_code)

    @rpc
    def suspected_dropouts(self) -> list[dict[str, Any]]:
        return calendar_jobs.suspected_dropouts(self.db, require_caller(self.caller))

    @rpc
    def mark_reported(self, student_numbers: list[str]) -> dict[str, int]:
        return calendar_jobs.mark_reported(self.db, require_caller(self.caller), student_numbers)

    @rpc
    def pending_graduations(self, state: str = "open") -> list[dict[str, Any]]:
        return calendar_jobs.pending_graduations(self.db, require_caller(self.caller), state)

    @rpc
    def add_pending_graduation(self, student_number: str, reason: str, expected_on: str = "") -> dict[str, Any]:
        return calendar_jobs.add_pending_graduation(self.db, require_caller(self.caller), student_number, reason,
                                                    expected_on)

    @rpc
    def close_pending_graduation(self, entry_id: int, note: str = "") -> dict[str, Any]:
        return calendar_jobs.close_pending_graduation(self.db, require_caller(self.caller), int(entry_id), note)

    # 转学 (issue 8, T1–T3): the transfer service's port to the register (services/transfer/roster_port.py)
    @rpc
    def transfer_identity(self, student_number: str) -> dict[str, Any] | None:
        return transfers_in_out.transfer_identity(self.db, require_caller(self.caller), student_number)

    @rpc
    def transfer_record(self, student_number: str) -> dict[str, Any]:
        return transfers_in_out.transfer_record(self.db, require_caller(self.caller), student_number)

    @rpc
    def admit_transfer(self, transfer_id: str, record: dict[str, Any], class_code: str,
                       national_student_id: str) -> str:
        return transfers_in_out.admit_transfer(self.db, require_caller(self.caller), transfer_id, record,
                                               class_code, national_student_id)

    @rpc
    def mark_transferred_out(self, transfer_id: str, student_number: str, reason: str) -> dict[str, Any]:
        return transfers_in_out.mark_transferred_out(self.db, require_caller(self.caller), transfer_id,
                                                     student_number, reason)

    @rpc
    def class_info(self, class_code: str) -> dict[str, Any] | None:
        return transfers_in_out.class_info(self.db, require_caller(self.caller), class_code)

    # 考生号 → 学号 (issue 4, R3): the mapping sheet, previewed, then applied in one batch
    @rpc
    def number_mapping_template(self) -> dict[str, str]:
        return number_mapping.number_mapping_template(self.db, require_caller(self.caller))

    @rpc
    def preview_number_mapping(self, content: str) -> dict[str, Any]:
        return number_mapping.preview_number_mapping(self.db, require_caller(self.caller), content)

    @rpc
    def apply_number_mapping(self, content: str, reason: str) -> dict[str, Any]:
        return number_mapping.apply_number_mapping(self.db, require_caller(self.caller), content, reason)

    @rpc
    def number_changes(self, student_number: str) -> dict[str, Any]:
        return number_mapping.number_changes(self.db, require_caller(self.caller), student_number)

    # 照片 (issue 4, R15): single upload, the current photo, a zip named by the rule
    @rpc
    def upload_photo(self, student_number: str, content: str, filename: str | None = None) -> dict[str, Any]:
        return photos.upload_photo(self.db, require_caller(self.caller), student_number, content, filename)

    @rpc
    def photo(self, student_number: str) -> dict[str, Any]:
        return photos.photo(self.db, require_caller(self.caller), student_number)

    @rpc
    def student_extras(self, student_number: str) -> dict[str, Any]:
        return photos.student_extras(self.db, require_caller(self.caller), student_number)

    @rpc
    def import_photos(self, content: str, valid_only: bool = False) -> dict[str, Any]:
        return photos.import_photos(self.db, require_caller(self.caller), content, bool(valid_only))

    @batch_event_handler("clearance", "clearance.completed")
    def on_clearance_completed(self, bodies: list[Any]) -> None:
        clearance.receive_many(self.db, "clearance.completed", bodies)

    @batch_event_handler("clearance", "clearance.revoked")
    def on_clearance_revoked(self, bodies: list[Any]) -> None:
        clearance.receive_many(self.db, "clearance.revoked", bodies)
