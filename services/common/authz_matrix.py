"""Authorization-matrix tests (I6): every operation × every role × each kind of target,
allowed or denied exactly as the roles table says — and a denial carries no data.

A service's test states, per operation, which (actor, target) cells are allowed; every
other cell must be denied. `Matrix.check` runs every cell and fails once, listing every
cell that differs, so a wrong rule shows as a table rather than as the first mismatch:

    matrix = Matrix(actors=ROLES, targets=("own", "in_scope", "out_of_scope"),
                    allowed={"counselor": {"own", "in_scope"}, "student_affairs": {...}})
    matrix.check(lambda actor, target: rpc_outcome(lambda: handlers.get_account(db, CALLERS[actor], ...)))

`rpc_outcome` reads a service call (Forbidden/NotFound → denied); `http_outcome` reads a
gateway response (403/404 with an error body and nothing else → denied). Any other
outcome (a validation error, a 500) is reported as itself: the cell's set-up is wrong or
the code is, and either way the matrix fails.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.common.errors import Forbidden, NotFound

ALLOWED = "allowed"
DENIED = "denied"


def rpc_outcome(call: Callable[[], Any]) -> str:
    """ALLOWED when the call returns, DENIED when it raises Forbidden or NotFound; any
    other error propagates (it is not an authorization outcome)."""
    try:
        call()
    except (Forbidden, NotFound):
        return DENIED
    return ALLOWED


def http_outcome(response: Any) -> str:
    """For a Flask/werkzeug test response: 2xx → ALLOWED; 403/404 whose JSON body is only
    `{"error": {...}}` → DENIED; a 403/404 with anything else in it is a leak."""
    status = response.status_code
    if 200 <= status < 300:
        return ALLOWED
    if status in (403, 404):
        body = response.get_json(silent=True)
        if isinstance(body, dict) and set(body) == {"error"}:
            return DENIED
        return f"{status} with data: {str(body)[:80]}"
    return f"HTTP {status}"


@dataclass(frozen=True)
class Matrix:
    """Which targets each actor may reach; actors missing from `allowed` may reach none."""

    actors: Sequence[str]
    targets: Sequence[str]
    allowed: Mapping[str, Collection[str]] = field(default_factory=dict)

    def expected(self, actor: str, target: str) -> str:
        return ALLOWED if target in self.allowed.get(actor, ()) else DENIED

    def cells(self) -> list[tuple[str, str, str]]:
        return [(a, t, self.expected(a, t)) for a in self.actors for t in self.targets]

    def check(self, attempt: Callable[[str, str], str], name: str = "") -> None:
        """Run `attempt(actor, target)` for every cell; fail listing every mismatch."""
        unknown = set(self.allowed) - set(self.actors)
        assert not unknown, f"allowed names actors not in the matrix: {sorted(unknown)}"
        wrong = []
        for actor, target, expected in self.cells():
            got = attempt(actor, target)
            if got != expected:
                wrong.append(f"  {actor:<18} × {target:<22} expected {expected}, got {got}")
        assert not wrong, f"authorization matrix {name} differs in {len(wrong)} cell(s):\n" + "\n".join(wrong)
