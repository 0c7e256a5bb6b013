"""Identity's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.common.caller import require_caller
from services.common.entrypoints import event_handler
from services.common.envelope import parse_envelope
from services.common.nameko_deps import CallerProvider, DatabaseProvider, OutboxRelayProvider
from services.identity import handlers


class IdentityService:
    name = "identity"

    db = DatabaseProvider("identity")
    caller = CallerProvider()
    relay = OutboxRelayProvider("identity")

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

    @event_handler("roster", "student.registered")
    def on_student_registered(self, body: Any) -> None:
        handlers.on_student_registered(self.db, parse_envelope(body))

    @event_handler("roster", "student.status_changed")
    def on_student_status_changed(self, body: Any) -> None:
        handlers.on_student_status_changed(self.db, parse_envelope(body))
