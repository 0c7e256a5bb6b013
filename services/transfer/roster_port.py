"""What the transfer workflow needs from roster, which owns the student records (T1, T6, T7).

`RpcRoster` is the port over roster's RPCs as transfer's system caller (the service wires it);
tests use `services/transfer/tests/roster_local.py`, the same port over roster's use cases in-process.
"""

from __future__ import annotations

from typing import Any, Protocol

from services.common.errors import NotFound

# search_students pages at most this many; one ID number matches at most a handful of records.
_SEARCH_PAGE = 100


class RosterPort(Protocol):
    def student_identity(self, student_number: str) -> dict[str, Any] | None:
        """{"student_number","name","gender","birth_date","id_type","id_number","national_student_id",
        "status","college_code","class_code"}, or None when the number is unknown."""
        ...

    def student_numbers_by_id_number(self, id_number: str) -> list[str]:
        """Numbers of the students holding this ID document number (T2: a request without a number)."""
        ...

    def transfer_record(self, student_number: str) -> dict[str, Any]:
        """The record sent in transfer.record (register fields, status history, rewards and sanctions)."""
        ...

    def admit_transfer(self, transfer_id: str, record: dict[str, Any], class_code: str,
                       national_student_id: str) -> str:
        """Create the student in `class_code` with a new number (R6); idempotent by transfer_id."""
        ...

    def mark_transferred_out(self, transfer_id: str, student_number: str, reason: str) -> None:
        """Status → transferred_out; idempotent."""
        ...

    def move_class(self, student_number: str, to_class: str, reason: str) -> dict[str, Any]:
        ...

    def class_info(self, class_code: str) -> dict[str, Any] | None:
        """{"class_code","class_name","major_code","college_code"} or None."""
        ...


class RpcRoster:
    """RosterPort over nameko RPC: `proxy` is a proxy of the roster service whose calls carry
    transfer's system caller (see `service.py`)."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy

    def student_identity(self, student_number: str) -> dict[str, Any] | None:
        try:
            return self.proxy.transfer_identity(student_number)  # type: ignore[no-any-return]
        except NotFound:
            return None

    def student_numbers_by_id_number(self, id_number: str) -> list[str]:
        found = self.proxy.search_students(q=id_number, page=1, per_page=_SEARCH_PAGE)
        return [item["student_number"] for item in found["items"]
                if str(item.get("national_id") or "").upper() == id_number.strip().upper()]

    def transfer_record(self, student_number: str) -> dict[str, Any]:
        return self.proxy.transfer_record(student_number)  # type: ignore[no-any-return]

    def admit_transfer(self, transfer_id: str, record: dict[str, Any], class_code: str,
                       national_student_id: str) -> str:
        return self.proxy.admit_transfer(transfer_id, record, class_code,  # type: ignore[no-any-return]
                                         national_student_id)

    def mark_transferred_out(self, transfer_id: str, student_number: str, reason: str) -> None:
        self.proxy.mark_transferred_out(transfer_id, student_number, reason)

    def move_class(self, student_number: str, to_class: str, reason: str) -> dict[str, Any]:
        return self.proxy.move_class(student_number, to_class, reason)  # type: ignore[no-any-return]

    def class_info(self, class_code: str) -> dict[str, Any] | None:
        try:
            return self.proxy.class_info(class_code)  # type: ignore[no-any-return]
        except NotFound:
            return None
