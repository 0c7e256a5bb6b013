"""Why a stay ended, in Chinese: the one table of these labels (pages show what housing says).

A stay ends for housing's own reasons (a move, a check-out) or because roster said the student's
status changed (H5): then the reason is roster's status code, labelled here as roster names it.
"""

from __future__ import annotations

MOVED = "moved"
CHECKED_OUT = "checked_out"

END_REASON_LABELS = {
    MOVED: "调整床位", CHECKED_OUT: "退宿",
    "graduated": "毕业", "completed": "结业", "attendance": "肄业", "withdrawn": "退学", "expelled": "开除",
    "deceased": "死亡", "transferred_out": "转出", "suspended": "休学", "military": "参军", "dropout": "辍学",
    "not_reported": "未报到",
}


def end_reason_label(code: str | None) -> str:
    """The label of an end reason; a code roster adds later shows as itself rather than as nothing."""
    if not code:
        return ""
    return END_REASON_LABELS.get(code, code)
