"""The roster port over roster's own use cases, in-process, on a real migrated roster database: the
workflow's handler tests run the real roster code without a broker (`RpcRoster` is the same port over RPC)."""

from __future__ import annotations

from typing import Any

from services.common.caller import system_caller
from services.common.db import Database
from services.roster import class_moves, handlers, transfers_in_out

# Roster's RPCs see transfer as this caller (service.py sends it explicitly).
CALLER = system_caller("transfer")


class LocalRoster:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.calls: list[str] = []  # which port methods ran, in order (to see what a step asked of roster)

    def student_identity(self, student_number: str) -> dict[str, Any] | None:
        self.calls.append("student_identity")
        return transfers_in_out.transfer_identity(self.db, CALLER, student_number)

    def student_numbers_by_id_number(self, id_number: str) -> list[str]:
        self.calls.append("student_numbers_by_id_number")
        found = handlers.search_students(self.db, CALLER, q=id_number, page=1, per_page=100)
        return [i["student_number"] for i in found["items"] if (i["national_id"] or "").upper() == id_number.upper()]

    def transfer_record(self, student_number: str) -> dict[str, Any]:
        self.calls.append("transfer_record")
        return transfers_in_out.transfer_record(self.db, CALLER, student_number)

    def admit_transfer(self, transfer_id: str, record: dict[str, Any], class_code: str,
                       national_student_id: str) -> str:
        self.calls.append("admit_transfer")
        return transfers_in_out.admit_transfer(self.db, CALLER, transfer_id, record, class_code, national_student_id)

    def mark_transferred_out(self, transfer_id: str, student_number: str, reason: str) -> None:
        self.calls.append("mark_transferred_out")
        transfers_in_out.mark_transferred_out(self.db, CALLER, transfer_id, student_number, reason)

    def move_class(self, student_number: str, to_class: str, reason: str) -> dict[str, Any]:
        self.calls.append("move_class")
        return class_moves.move_class(self.db, CALLER, student_number, to_class, reason)

    def class_info(self, class_code: str) -> dict[str, Any] | None:
        self.calls.append("class_info")
        return transfers_in_out.class_info(self.db, CALLER, class_code)
