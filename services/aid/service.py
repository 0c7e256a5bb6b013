"""Aid's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.aid import applications, handlers, identification_import, registers, renames, reporting, summaries
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


class AidService(Observable):
    name = "aid"

    db = DatabaseProvider("aid")
    caller = CallerProvider()
    relay = OutboxRelayProvider("aid")
    observer = MetricsProvider("aid")

    @rpc
    def health(self) -> dict[str, Any]:
        return handlers.health(self.db)

    @rpc
    def enrolled_student(self, student_number: str) -> dict[str, Any]:
        return handlers.enrolled_student(self.db, require_caller(self.caller), student_number)

    # -- registers, programmes, quotas (services/aid/registers.py) --

    @rpc
    def identify_needy(self, data: dict[str, Any]) -> dict[str, Any]:
        return registers.identify_needy(self.db, require_caller(self.caller), data)

    @rpc
    def identify_many(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return registers.identify_many(self.db, require_caller(self.caller), rows)

    @rpc
    def needy_record(self, student_number: str, academic_year: str, reveal: bool = False) -> dict[str, Any]:
        return registers.needy_record(self.db, require_caller(self.caller), student_number, academic_year, reveal)

    @rpc
    def needy_register(self, academic_year: str, page: int = 1, per_page: int = 20,
                       level: str = "") -> dict[str, Any]:
        return registers.needy_register(self.db, require_caller(self.caller), academic_year, page, per_page, level)

    @rpc
    def list_programmes(self) -> list[dict[str, Any]]:
        return registers.list_programmes(self.db, require_caller(self.caller))

    @rpc
    def save_programme(self, data: dict[str, Any]) -> dict[str, Any]:
        return registers.save_programme(self.db, require_caller(self.caller), data)

    @rpc
    def allocate_quota(self, data: dict[str, Any]) -> dict[str, Any]:
        return registers.allocate_quota(self.db, require_caller(self.caller), data)

    @rpc
    def list_quotas(self, programme_code: str, academic_year: str) -> list[dict[str, Any]]:
        return registers.list_quotas(self.db, require_caller(self.caller), programme_code, academic_year)

    @rpc
    def consistency_check(self, academic_year: str) -> dict[str, Any]:
        return registers.consistency_check(self.db, require_caller(self.caller), academic_year)

    # -- 困难认定导入 (services/aid/identification_import.py) --

    @rpc
    def need_levels(self) -> dict[str, list[str]]:
        return identification_import.need_levels(require_caller(self.caller))

    @rpc
    def identification_template(self) -> dict[str, str]:
        return identification_import.identification_template(require_caller(self.caller))

    @rpc
    def preview_identifications(self, content: str) -> dict[str, Any]:
        return identification_import.preview_identifications(self.db, require_caller(self.caller), content)

    @rpc
    def import_identifications(self, content: str) -> dict[str, Any]:
        return identification_import.import_identifications(self.db, require_caller(self.caller), content)

    # -- applications and reviews (services/aid/applications.py) --

    @rpc
    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        return applications.apply(self.db, require_caller(self.caller), data)

    @rpc
    def review(self, application_id: int, decision: str, reason: str = "") -> dict[str, Any]:
        return applications.review_application(self.db, require_caller(self.caller), application_id, decision,
                                               reason)

    @rpc
    def review_many(self, application_ids: list[int], decision: str, reason: str = "") -> dict[str, Any]:
        return applications.review_many(self.db, require_caller(self.caller), application_ids, decision, reason)

    @rpc
    def get_application(self, application_id: int) -> dict[str, Any]:
        return applications.get_application(self.db, require_caller(self.caller), application_id)

    @rpc
    def review_queue(self, page: int = 1, per_page: int = 20) -> dict[str, Any]:
        return applications.review_queue(self.db, require_caller(self.caller), page, per_page)

    @rpc
    def my_aid(self) -> dict[str, Any]:
        return applications.my_aid(self.db, require_caller(self.caller))

    @rpc
    def student_instalments(self, student_number: str) -> dict[str, Any]:
        return applications.student_instalments(self.db, require_caller(self.caller), student_number)

    @rpc
    def pay_instalments(self, on_date: str) -> dict[str, Any]:
        return applications.pay_instalments(self.db, require_caller(self.caller), on_date)

    @rpc
    def aided_register(self, academic_year: str, page: int = 1, per_page: int = 20,
                       programme_code: str = "") -> dict[str, Any]:
        return applications.aided_register(self.db, require_caller(self.caller), academic_year, page, per_page,
                                           programme_code)

    @rpc
    def home_counts(self) -> dict[str, int]:
        return summaries.home_counts(self.db, require_caller(self.caller))

    # -- national reporting (services/aid/reporting.py) --

    @rpc
    def national_export(self, kind: str, academic_year: str) -> dict[str, Any]:
        return reporting.national_export(self.db, require_caller(self.caller), kind, academic_year)

    @rpc
    def submit_national(self, kind: str, academic_year: str) -> dict[str, Any]:
        return reporting.submit_national(self.db, require_caller(self.caller), kind, academic_year)

    @rpc
    def aid_summary(self, academic_year: str) -> dict[str, Any]:
        return reporting.summary(self.db, require_caller(self.caller), academic_year)

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
