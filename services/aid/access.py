"""Who may see aid data (A5) and the configured need levels, shared by aid's use cases.

Only the aid centre sees the whole of it; counselors and deputy secretaries see students in
their scope, for identification and the review steps that are theirs; a student sees their
own. Unknown numbers: NotFound for the aid centre, Forbidden for everyone else (no probing).
"""

from __future__ import annotations

import os
import re

from sqlalchemy.orm import Session

from services.aid.adapters.orm import Student
from services.aid.domain.needy import DEFAULT_LEVELS, Levels
from services.common.caller import AID_AUDITOR, AID_OPERATOR, COUNSELOR, DEPUTY_SECRETARY, STUDENT, SYSTEM, Caller
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.events import STUDENT_NUMBER

AID_CENTRE = (AID_OPERATOR, AID_AUDITOR)
SCOPED_STAFF = (COUNSELOR, DEPUTY_SECRETARY)
AID_DATA = (*AID_CENTRE, *SCOPED_STAFF, STUDENT)


def levels() -> Levels:
    """`AID_NEED_LEVELS` (comma-separated, most in need first, last = not needy) or the national four."""
    configured = tuple(x.strip() for x in os.environ.get("AID_NEED_LEVELS", "").split(",") if x.strip())
    return Levels(configured if len(configured) >= 2 else DEFAULT_LEVELS)


def whole_register(caller: Caller) -> bool:
    return caller.role in (*AID_CENTRE, SYSTEM)


def check_number(number: str) -> None:
    if not isinstance(number, str) or not re.fullmatch(STUDENT_NUMBER, number):
        raise Invalid("学号格式不正确")


def student_for(s: Session, caller: Caller, number: str, *roles: str) -> Student:
    """The enrolled-register row of a student `caller` (in one of `roles`) may act on."""
    caller.require_role(*roles)
    check_number(number)
    row = s.get(Student, number)
    if row is None:
        if whole_register(caller):
            raise NotFound(f"在校生库中没有学号 {number}")
        raise Forbidden(f"学生 {number} 不在您的数据权限范围内")
    caller.require_student(row.student_number, row.college_code, row.class_code)
    return row


def may_reveal(caller: Caller, reveal: bool) -> bool:
    """ID numbers and income are masked unless the aid centre asks to see them (and that is audited)."""
    return bool(reveal) and caller.role in (*AID_CENTRE, SYSTEM)
