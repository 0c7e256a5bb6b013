"""Student statuses (学籍状态, R8) and what follows from each."""

from __future__ import annotations

ENROLLED = "enrolled"
SUSPENDED = "suspended"
WITHDRAWN = "withdrawn"
EXPELLED = "expelled"
DECEASED = "deceased"
MILITARY = "military"
TRANSFERRED_OUT = "transferred_out"
VISITING = "visiting"
GRADUATED = "graduated"
COMPLETED = "completed"
ATTENDANCE = "attendance"
NOT_REPORTED = "not_reported"
SUSPECTED_DROPOUT = "suspected_dropout"
DROPOUT = "dropout"

LABELS: dict[str, str] = {
    ENROLLED: "在读",
    SUSPENDED: "休学",
    WITHDRAWN: "退学",
    EXPELLED: "开除",
    DECEASED: "死亡",
    MILITARY: "参军",
    TRANSFERRED_OUT: "转出",
    VISITING: "借读",
    GRADUATED: "毕业",
    COMPLETED: "结业",
    ATTENDANCE: "肄业",
    NOT_REPORTED: "未报到",
    SUSPECTED_DROPOUT: "疑似辍学",
    DROPOUT: "辍学",
}

# Statuses after which the student has left the institution: the bed is released (H5)
# and the account deactivated (I5).
LEFT = frozenset({GRADUATED, COMPLETED, ATTENDANCE, WITHDRAWN, EXPELLED, DECEASED,
                  TRANSFERRED_OUT})

# Statuses from which the clearance system's outcome may be applied (R18).
GRADUATABLE = frozenset({ENROLLED})

# The clearance contract's outcomes (clearance-events.md) and the status each sets.
CLEARANCE_OUTCOMES: dict[str, str] = {
    "graduated": GRADUATED,
    "completed": COMPLETED,
    "attendance": ATTENDANCE,
}


def label(status: str) -> str:
    return LABELS.get(status, status)


def has_left(status: str) -> bool:
    return status in LEFT


def on_campus(status: str) -> bool:
    """是否在校: enrolled or visiting students are on campus."""
    return status in (ENROLLED, VISITING)


def graduation_refusal(current: str) -> str | None:
    """Why a clearance outcome cannot be applied to a student in `current`, or None."""
    if current in GRADUATABLE:
        return None
    return f"学籍状态为“{label(current)}”，不能按离校结果变更"
