"""Transfer's nameko entrypoints: parse, delegate to the use cases, serialise."""

from __future__ import annotations

import json
import os
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, ServiceProxy, rpc
from nameko.timer import timer

from services.common.caller import CONTEXT_KEY, require_caller, system_caller
from services.common.entrypoints import batch_event_handler, event_handler, raw_consumer
from services.common.envelope import parse_envelope
from services.common.nameko_deps import (
    CallerProvider,
    DatabaseProvider,
    MetricsProvider,
    Observable,
    OutboxRelayProvider,
)
from services.transfer import admin, handlers, interchange, internal, renames, summaries, transfers
from services.transfer.roster_port import RpcRoster


class _AsSystem:
    """A worker context whose outgoing calls carry transfer's system caller, not the gateway user's
    (nameko would pass the worker's own context data on); the correlation id is kept for the logs."""

    def __init__(self, worker_ctx: Any) -> None:
        self._ctx = worker_ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    @property
    def context_data(self) -> dict[str, Any]:
        data = dict(self._ctx.context_data)
        try:
            correlation_id = json.loads(data.get(CONTEXT_KEY) or "{}").get("correlation_id")
        except (TypeError, ValueError, AttributeError):
            correlation_id = None
        data[CONTEXT_KEY] = system_caller("transfer", correlation_id).to_header()
        return data


class RosterUnavailable(Exception):
    """Roster did not answer in time."""


class _Timed:
    """Roster's RPCs with a time limit (TRANSFER_ROSTER_TIMEOUT, 30 s): a silent roster fails the step,
    which the caller (or the interchange's redelivery) retries, instead of holding the worker forever."""

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy
        self._seconds = float(os.environ.get("TRANSFER_ROSTER_TIMEOUT", "30"))

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._proxy, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with eventlet.Timeout(self._seconds, RosterUnavailable(f"学籍服务未在 {self._seconds:g} 秒内响应")):
                return method(*args, **kwargs)

        return call


class RosterPortProvider(RpcProxy):
    """The workflow's `RosterPort` over roster's RPCs, as transfer's system caller."""

    def __init__(self) -> None:
        super().__init__("roster")

    def get_dependency(self, worker_ctx: Any) -> RpcRoster:
        proxy = ServiceProxy(_AsSystem(worker_ctx), self.target_service, self.rpc_reply_listener, **self.options)
        return RpcRoster(_Timed(proxy))


class InterchangePublisherProvider(DependencyProvider):
    """The interchange sender's publisher (one confirming kombu connection per process)."""

    def setup(self) -> None:
        self.publisher = interchange.BrokerPublisher(self.container.config["AMQP_URI"])

    def stop(self) -> None:
        self.publisher.close()

    def kill(self) -> None:
        self.publisher.close()

    def get_dependency(self, worker_ctx: Any) -> interchange.BrokerPublisher:
        return self.publisher


class TransferService(Observable):
    name = "transfer"

    db = DatabaseProvider("transfer")
    caller = CallerProvider()
    relay = OutboxRelayProvider("transfer")
    observer = MetricsProvider("transfer")
    roster = RosterPortProvider()  # the RosterPort (roster's RPCs as transfer's system caller)
    publisher = InterchangePublisherProvider()

    @rpc
    def health(self) -> dict[str, Any]:
        return handlers.health(self.db)

    @rpc
    def student_for_matching(self, student_number: str) -> dict[str, Any]:
        return handlers.student_for_matching(self.db, require_caller(self.caller), student_number)

    # 转学工作流 (issue 8, T1 T2 T4 T5): filing, decisions, cancel, views, deadlines (transfers.py)
    @rpc
    def file_transfer(self, student: dict[str, Any], peer_code: str, transfer_kind: str, reason: str,
                      target_class_code: str, evidence: list[dict[str, Any]] | None = None,
                      out_of_term_reason: str = "") -> dict[str, Any]:
        return transfers.file_transfer(self.db, require_caller(self.caller), self.roster, student, peer_code,
                                       transfer_kind, reason, target_class_code, evidence, out_of_term_reason)

    @rpc
    def decide_transfer(self, transfer_id: str, stage: str, approve: bool, reason: str = "") -> dict[str, Any]:
        return transfers.decide_transfer(self.db, require_caller(self.caller), self.roster, transfer_id, stage,
                                         approve, reason)

    @rpc
    def cancel_transfer(self, transfer_id: str, reason: str) -> dict[str, Any]:
        return transfers.cancel_transfer(self.db, require_caller(self.caller), transfer_id, reason)

    @rpc
    def list_transfers(self, direction: str = "", state: str = "", q: str = "", page: int = 1,
                       per_page: int = 20) -> dict[str, Any]:
        return transfers.list_transfers(self.db, require_caller(self.caller), direction, state, q, int(page),
                                        int(per_page))

    @rpc
    def choices(self) -> dict[str, list[dict[str, str]]]:
        require_caller(self.caller)
        return transfers.choices()

    @rpc
    def my_stages(self) -> list[dict[str, str]]:
        return transfers.my_stages(require_caller(self.caller))

    # 首页与数据看板 (issue 9, services/transfer/summaries.py)
    @rpc
    def counts_by_stage(self) -> dict[str, Any]:
        return summaries.counts_by_stage(self.db, require_caller(self.caller))

    @rpc
    def home_counts(self) -> dict[str, int]:
        return summaries.home_counts(self.db, require_caller(self.caller))

    @rpc
    def get_transfer(self, transfer_id: str) -> dict[str, Any]:
        return transfers.get_transfer(self.db, require_caller(self.caller), transfer_id)

    @rpc
    def transfer_evidence(self, transfer_id: str, file_id: int) -> dict[str, Any]:
        return transfers.transfer_evidence(self.db, require_caller(self.caller), transfer_id, file_id)

    @rpc
    def run_deadlines(self, as_of: str = "") -> dict[str, int]:
        return transfers.run_deadlines(self.db, require_caller(self.caller), self.roster, as_of)

    @timer(interval=float(os.environ.get("TRANSFER_DEADLINE_INTERVAL", "3600")))
    def run_deadlines_due(self) -> None:
        transfers.run_deadlines(self.db, system_caller("transfer"), self.roster)

    # 校际交换 xj-transfer/1 (issue 8): the inbox, the sender, inspection (interchange.py)
    @raw_consumer(where=interchange.inbox)
    def receive_interchange(self, body: bytes, headers: dict[str, Any], routing_key: str) -> None:
        interchange.receive_raw(self.db, body, headers, routing_key, self.roster)

    @timer(interval=float(os.environ.get("TRANSFER_SEND_INTERVAL", "1")))
    def send_interchange(self) -> None:
        for _ in range(50):  # a backlog goes out batch by batch in one tick; a failed publish ends it
            if interchange.send_due(self.db, self.publisher) < interchange.SEND_BATCH:
                break

    @rpc
    def interchange_problems(self, page: int = 1, per_page: int = 50) -> dict[str, Any]:
        return interchange.problems(self.db, require_caller(self.caller), page, per_page)

    @rpc
    def resend_now(self, transfer_id: str = "") -> dict[str, int]:
        return interchange.resend_now(self.db, require_caller(self.caller), transfer_id)

    # 转学管理 (issue 8): peers and keys, the working-day calendar, settings (admin.py); T7 校内异动 (internal.py)
    @rpc
    def list_peers(self) -> list[dict[str, Any]]:
        return admin.list_peers(self.db, require_caller(self.caller))

    @rpc
    def save_peer(self, code: str, name: str, province: str, authority_code: str = "",
                  active: bool = True) -> dict[str, Any]:
        return admin.save_peer(self.db, require_caller(self.caller), code, name, province, authority_code,
                               bool(active))

    @rpc
    def add_peer_key(self, peer_code: str, key_id: str, secret: str = "") -> dict[str, Any]:
        return admin.add_peer_key(self.db, require_caller(self.caller), peer_code, key_id, secret)

    @rpc
    def retire_peer_key(self, peer_code: str, key_id: str) -> dict[str, Any]:
        return admin.retire_peer_key(self.db, require_caller(self.caller), peer_code, key_id)

    @rpc
    def calendar_days(self, year: int) -> dict[str, Any]:
        return admin.calendar_days(self.db, require_caller(self.caller), year)

    @rpc
    def save_calendar_day(self, day: str, is_workday: Any, note: str = "") -> dict[str, Any]:
        return admin.save_calendar_day(self.db, require_caller(self.caller), day, is_workday, note)

    @rpc
    def delete_calendar_day(self, day: str) -> dict[str, Any]:
        return admin.delete_calendar_day(self.db, require_caller(self.caller), day)

    @rpc
    def calendar_template(self) -> dict[str, str]:
        return admin.calendar_template(self.db, require_caller(self.caller))

    @rpc
    def import_calendar(self, content: str) -> dict[str, Any]:
        return admin.import_calendar(self.db, require_caller(self.caller), content)

    @rpc
    def transfer_settings(self) -> list[dict[str, Any]]:
        return admin.transfer_settings(self.db, require_caller(self.caller))

    @rpc
    def save_transfer_setting(self, key: str, value: Any) -> dict[str, Any]:
        return admin.save_transfer_setting(self.db, require_caller(self.caller), key, value)

    @rpc
    def file_internal_change(self, student_number: str, kind: str, to_class_code: str,
                             reason: str) -> dict[str, Any]:
        return internal.file_internal_change(self.db, require_caller(self.caller), self.roster, student_number,
                                             kind, to_class_code, reason)

    @rpc
    def decide_internal_change(self, change_id: int, approve: bool, note: str = "") -> dict[str, Any]:
        return internal.decide_internal_change(self.db, require_caller(self.caller), self.roster, int(change_id),
                                               bool(approve), note)

    @rpc
    def list_internal_changes(self, state: str = "") -> list[dict[str, Any]]:
        return internal.list_internal_changes(self.db, require_caller(self.caller), state)

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
