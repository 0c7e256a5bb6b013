"""Aid's authorization matrix (A5, I6): every operation × every role × each kind of target.

Only the aid centre sees everything; counselors and deputy secretaries reach students in their
scope; a student reaches their own record; every other role reaches nothing (not even student affairs)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.aid import applications, handlers, registers, reporting
from services.aid.tests.factories import caller
from services.aid.tests.flow import YEAR, enrol, identify, number
from services.common.authz_matrix import ALLOWED, Matrix, rpc_outcome
from services.common.caller import ROLES, Caller
from services.common.db import Database
from services.common.errors import Conflict

OWN = number(1)  # the student caller's own record, in the counselor's class and the deputy's college
SAME_COLLEGE = number(1, "2025010201")
OTHER_COLLEGE = number(1, "2025020101")
TARGETS = {"own_class": OWN, "same_college": SAME_COLLEGE, "other_college": OTHER_COLLEGE}

CALLERS: dict[str, Caller] = {role: caller(role) for role in ROLES}
CALLERS["student"] = caller("student", "self", OWN)
CALLERS["counselor"] = caller("counselor", "classes", OWN[:10])
CALLERS["deputy_secretary"] = caller("deputy_secretary", "college", "01")
CALLERS["authority"] = caller("authority", "area", "11")

EVERY_TARGET = set(TARGETS)
SCOPED = {"student": {"own_class"}, "counselor": {"own_class"}, "deputy_secretary": {"own_class", "same_college"}}


@pytest.fixture
def db_backend() -> str:
    """Authorization does not depend on SQL: one back end keeps the matrix quick."""
    return "sqlite"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    db = migrated_db("aid")
    enrol(db, *TARGETS.values())
    for serial, n in enumerate(TARGETS.values(), start=1):
        identify(db, n, serial=serial, who=CALLERS["aid_operator"])
    return db


def matrix(allowed: dict[str, set[str]]) -> Matrix:
    return Matrix(actors=ROLES, targets=tuple(TARGETS), allowed=allowed)


def test_reading_a_students_aid_data(db: Database) -> None:
    readers = {**SCOPED, "aid_operator": EVERY_TARGET, "aid_auditor": EVERY_TARGET}
    matrix(readers).check(lambda a, t: rpc_outcome(
        lambda: registers.needy_record(db, CALLERS[a], TARGETS[t], YEAR, reveal=True)), "needy_record")
    matrix(readers).check(lambda a, t: rpc_outcome(
        lambda: applications.student_instalments(db, CALLERS[a], TARGETS[t])), "student_instalments")


def test_enrolled_register_view(db: Database) -> None:
    # The enrolled register (roster's copy) also serves student affairs; students use roster for it.
    allowed = {"counselor": {"own_class"}, "deputy_secretary": {"own_class", "same_college"},
               "aid_operator": EVERY_TARGET, "aid_auditor": EVERY_TARGET, "student_affairs": EVERY_TARGET}
    matrix(allowed).check(lambda a, t: rpc_outcome(
        lambda: handlers.enrolled_student(db, CALLERS[a], TARGETS[t])), "enrolled_student")


def test_identifying_and_applying(db: Database) -> None:
    identifiers = {"counselor": {"own_class"}, "deputy_secretary": {"own_class", "same_college"},
                   "aid_operator": EVERY_TARGET}
    matrix(identifiers).check(lambda a, t: rpc_outcome(lambda: identify(db, TARGETS[t], who=CALLERS[a])),
                              "identify_needy")

    def apply(actor: str, target: str) -> str:
        try:
            return rpc_outcome(lambda: applications.apply(db, CALLERS[actor], {
                "student_number": TARGETS[target], "programme_code": "LSTD", "academic_year": YEAR,
                "statement": "入学缴费困难"}))
        except Conflict as exc:  # reached the rules, so authorization let it through
            assert "本学年已申请" in str(exc.args[0])
            return ALLOWED

    matrix({**identifiers, "student": {"own_class"}}).check(apply, "apply")


def test_whole_register_operations_by_role(db: Database) -> None:
    ops = {
        "needy_register": (lambda c: registers.needy_register(db, c, YEAR),
                           {"aid_operator", "aid_auditor", "counselor", "deputy_secretary"}),
        "aided_register": (lambda c: applications.aided_register(db, c, YEAR), {"aid_operator", "aid_auditor"}),
        "review_queue": (lambda c: applications.review_queue(db, c),
                         {"aid_operator", "aid_auditor", "counselor", "deputy_secretary"}),
        "national_export": (lambda c: reporting.national_export(db, c, "family", YEAR),
                            {"aid_operator", "aid_auditor"}),
        "consistency_check": (lambda c: registers.consistency_check(db, c, YEAR), {"aid_operator", "aid_auditor"}),
        "pay_instalments": (lambda c: applications.pay_instalments(db, c, "2026-10-01"), {"aid_operator"}),
        "list_programmes": (lambda c: registers.list_programmes(db, c),
                            {"aid_operator", "aid_auditor", "counselor", "deputy_secretary", "student"}),
    }
    m = Matrix(actors=ROLES, targets=tuple(ops), allowed={r: {op for op, (_, who) in ops.items() if r in who}
                                                          for r in ROLES})
    m.check(lambda a, op: rpc_outcome(lambda: ops[op][0](CALLERS[a])), "aid operations")
