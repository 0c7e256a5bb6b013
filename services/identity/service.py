"""Identity's nameko entrypoints: parse, delegate to the use cases, serialise."""

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
from services.identity import admin, grants, handlers, org, renames, staff_import


class IdentityService(Observable):
    name = "identity"

    db = DatabaseProvider("identity")
    caller = CallerProvider()
    relay = OutboxRelayProvider("identity")
    observer = MetricsProvider("identity")

    @rpc
    def health(self) -> dict[str, Any]:
        return handlers.health(self.db)

    # No caller context: these are how a caller comes to be.
    @rpc
    def login(self, username: str, password: str, remote_addr: str | None = None) -> dict[str, Any]:
        return handlers.login(self.db, username, password, remote_addr)

    @rpc
    def resolve_session(self, session_id: str) -> dict[str, Any]:
        return handlers.resolve_session(self.db, session_id)

    @rpc
    def logout(self, session_id: str) -> None:
        handlers.logout(self.db, session_id)

    @rpc
    def get_account(self, username: str) -> dict[str, Any]:
        return handlers.get_account(self.db, require_caller(self.caller), username)

    @rpc
    def create_account(self, username: str, display_name: str, role: str, scope_kind: str,
                       scope_ids: list[str], password: str) -> dict[str, Any]:
        return handlers.create_account(self.db, require_caller(self.caller), username, display_name, role,
                                       scope_kind, scope_ids, password)

    @rpc
    def change_password(self, old_password: str, new_password: str) -> dict[str, Any]:
        return handlers.change_password(self.db, require_caller(self.caller), old_password, new_password)

    @rpc
    def set_password(self, username: str, new_password: str) -> dict[str, Any]:
        return handlers.set_password(self.db, require_caller(self.caller), username, new_password)

    @rpc
    def count_accounts(self, active: bool | None = None) -> dict[str, int]:
        return handlers.count_accounts(self.db, require_caller(self.caller), active)

    # --- administration (admin.py) and grants (grants.py)
    @rpc
    def search_accounts(self, q: str = "", page: int = 1, per_page: int = 20,
                        active: bool | None = None) -> dict[str, Any]:
        return admin.search_accounts(self.db, require_caller(self.caller), q, page, per_page, active)

    @rpc
    def edit_account(self, username: str, display_name: str) -> dict[str, Any]:
        return admin.edit_account(self.db, require_caller(self.caller), username, display_name)

    @rpc
    def disable_account(self, username: str, reason: str) -> dict[str, Any]:
        return admin.disable_account(self.db, require_caller(self.caller), username, reason)

    @rpc
    def enable_account(self, username: str) -> dict[str, Any]:
        return admin.enable_account(self.db, require_caller(self.caller), username)

    @rpc
    def unlock_account(self, username: str) -> dict[str, Any]:
        return admin.unlock_account(self.db, require_caller(self.caller), username)

    @rpc
    def reset_password(self, username: str) -> dict[str, Any]:
        return admin.reset_password(self.db, require_caller(self.caller), username)

    @rpc
    def issue_initial_passwords(self, class_code: str | None = None) -> dict[str, Any]:
        return admin.issue_initial_passwords(self.db, require_caller(self.caller), class_code)

    @rpc
    def my_sessions(self) -> dict[str, Any]:
        return admin.my_sessions(self.db, require_caller(self.caller))

    @rpc
    def end_my_session(self, ref: str) -> dict[str, int]:
        return admin.end_my_session(self.db, require_caller(self.caller), ref)

    @rpc
    def my_logins(self, limit: int = 50) -> dict[str, Any]:
        return admin.my_logins(self.db, require_caller(self.caller), limit)

    @rpc
    def login_log(self, q: str = "", page: int = 1, per_page: int = 20) -> dict[str, Any]:
        return admin.login_log(self.db, require_caller(self.caller), q, page, per_page)

    @rpc
    def online_sessions(self) -> dict[str, Any]:
        return admin.online_sessions(self.db, require_caller(self.caller))

    @rpc
    def force_logout(self, username: str) -> dict[str, int]:
        return admin.force_logout(self.db, require_caller(self.caller), username)

    @rpc
    def staff_template(self) -> str:
        return staff_import.staff_template(require_caller(self.caller))

    @rpc
    def import_staff(self, data_b64: str) -> dict[str, Any]:
        return staff_import.import_staff(self.db, require_caller(self.caller), data_b64)

    @rpc
    def initial_password_sheet(self, class_code: str | None = None) -> dict[str, Any]:
        return staff_import.initial_password_sheet(self.db, require_caller(self.caller), class_code)

    @rpc
    def list_grants(self, username: str) -> dict[str, Any]:
        return grants.list_grants(self.db, require_caller(self.caller), username)

    @rpc
    def grant(self, username: str, role: str, scope_kind: str, scope_ids: list[str]) -> dict[str, Any]:
        return grants.grant(self.db, require_caller(self.caller), username, role, scope_kind, scope_ids)

    @rpc
    def revoke_grant(self, grant_id: int) -> dict[str, Any]:
        return grants.revoke_grant(self.db, require_caller(self.caller), grant_id)

    @rpc
    def switch_role(self, role: str) -> dict[str, Any]:
        return grants.switch_role(self.db, require_caller(self.caller), role)

    # --- org tree read model (org.py): units for the account pages' scope choices
    @rpc
    def org_units(self, kind: str = "") -> dict[str, Any]:
        return org.org_units(self.db, require_caller(self.caller), kind)

    @event_handler("roster", "org.units_changed")
    def on_org_units_changed(self, body: Any) -> None:
        handlers.on_org_units_changed(self.db, parse_envelope(body))

    @event_handler("roster", "student.registered")
    def on_student_registered(self, body: Any) -> None:
        handlers.on_student_registered(self.db, parse_envelope(body))

    @event_handler("roster", "student.class_changed")
    def on_student_class_changed(self, body: Any) -> None:
        handlers.on_student_class_changed(self.db, parse_envelope(body))

    @event_handler("roster", "student.number_changed")
    def on_student_number_changed(self, body: Any) -> None:
        renames.on_student_number_changed(self.db, parse_envelope(body))

    @event_handler("roster", "student.merged")
    def on_student_merged(self, body: Any) -> None:
        renames.on_student_merged(self.db, parse_envelope(body))

    @batch_event_handler("roster", "student.status_changed")
    def on_student_status_changed(self, bodies: list[Any]) -> None:
        handlers.on_student_status_changed(self.db, *map(parse_envelope, bodies))
