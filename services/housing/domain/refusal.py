"""How a housing rule says no, without knowing about RPC error types."""

from __future__ import annotations


class Refusal(Exception):
    """A rule refused a request. `conflict` means the current state stands in the way
    (an occupied bed); otherwise the request itself is not acceptable. `kind` names the
    rule for previews of bulk changes (gender, college, capacity, double_booking…)."""

    def __init__(self, message: str, *, conflict: bool = False, kind: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.conflict = conflict
        self.kind = kind
