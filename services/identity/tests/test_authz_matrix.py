"""Authorization matrix of identity's use cases (the RPCs are thin over them): every
operation × every role of the roles table × own / in-scope / out-of-scope / unknown
targets, allowed or denied exactly as domain.md's roles table and I2–I4 say."""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from openpyxl import Workbook

from services.common.authz_matrix import Matrix, rpc_outcome
from services.common.caller import ROLES, Caller
from services.common.db import Database
from services.identity import admin, grants, handlers, org, staff_import
from services.identity.tests.factories import PASSWORD, SYSTEM, caller, registered, staff

STUDENT_NUMBER = "202301010105"
IN_SCOPE, OUT_OF_SCOPE, STAFF, UNKNOWN = "202301010106", "202302010101", "1000099", "1000098"
# Each role's account and the grant it holds.
ACTORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "student": (STUDENT_NUMBER, "self", (STUDENT_NUMBER,)),
    "counselor": ("1000004", "classes", ("2023010101",)),
    "deputy_secretary": ("1000002", "college", ("01",)),
    "student_affairs": ("1000001", "institution", ()),
    "academic_affairs": ("1000011", "institution", ()),
    "it_centre": ("1000012", "institution", ()),
    "housing_centre": ("1000013", "institution", ()),
    "aid_operator": ("1000014", "institution", ()),
    "aid_auditor": ("1000015", "institution", ()),
    "authority": ("1000016", "area", ("340100",)),
}
assert set(ACTORS) == set(ROLES)
CALLERS = {role: caller(name, role, kind, *ids) for role, (name, kind, ids) in ACTORS.items()}
STAFF_ROLES = [r for r in ROLES if r != "student"]
TARGETS = ("own", "student_in_scope", "student_out_of_scope", "staff", "unknown")
SA, COUNSELORS = "student_affairs", ("counselor", "deputy_secretary")
_classes = itertools.cycle(range(3, 100))  # fresh two-digit class numbers (each test has its own DB)


@pytest.fixture
def db_backend() -> str:
    """Rules, not SQL: one back end keeps the ~40 matrices quick (the use cases' SQL is
    covered on both back ends by their own tests)."""
    return "sqlite"


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("identity")
    for role, (name, kind, ids) in ACTORS.items():
        if role != "student":
            staff(database, name, role, kind, ids)
    staff(database, STAFF, "counselor", "classes", ("2023010102",))
    for number, klass in ((STUDENT_NUMBER, "2023010101"), (IN_SCOPE, "2023010101"), (OUT_OF_SCOPE, "2023020101")):
        handlers.on_student_registered(database, registered(number, klass=klass))
        handlers.set_password(database, SYSTEM, number, PASSWORD)
    return database


def target_name(actor: str, target: str) -> str:
    return {"own": ACTORS[actor][0], "student_in_scope": IN_SCOPE, "student_out_of_scope": OUT_OF_SCOPE,
            "staff": STAFF, "unknown": UNKNOWN}[target]


def on_account(call: Callable[[Database, Caller, str], Any]) -> Callable[[Database, str, str], str]:
    return lambda db, actor, target: rpc_outcome(lambda: call(db, CALLERS[actor], target_name(actor, target)))


def fresh_class(college: str) -> str:
    return f"2023{college}01{next(_classes):02d}"


def grant_to(db: Database, actor: str, target: str) -> str:
    username = ACTORS[actor][0] if target == "own" else STAFF if target != "unknown" else UNKNOWN
    college = "02" if target == "staff_out_of_college" else "01"
    return rpc_outcome(lambda: grants.grant(db, CALLERS[actor], username, "counselor", "classes",
                                            [fresh_class(college)]))


def revoke(db: Database, actor: str, target: str) -> str:
    if target == "unknown":
        grant_id = 999_999
    else:
        owner = ACTORS[actor][0] if target == "own" else STAFF
        if owner == STUDENT_NUMBER:
            grant_id = 999_998  # a student holds no grant: nothing of theirs to revoke
        else:
            college = "02" if target == "grant_out_of_college" else "01"
            made = grants.grant(db, SYSTEM, owner, "counselor", "classes", [fresh_class(college)])
            grant_id = made["items"][-1]["id"]
    return rpc_outcome(lambda: grants.revoke_grant(db, CALLERS[actor], grant_id))


def staff_workbook(username: str) -> str:
    wb = Workbook()
    wb.active.append(["工号", "姓名", "角色", "数据范围", "初始密码"])
    wb.active.append([username, "新老师", "宿管中心", "", ""])
    out = io.BytesIO()
    wb.save(out)
    return base64.b64encode(out.getvalue()).decode()


def untargeted(call: Callable[[Database, Caller], Any]) -> Callable[[Database, str, str], str]:
    return lambda db, actor, target: rpc_outcome(lambda: call(db, CALLERS[actor]))


EVERYONE_OWN = {role: {"own"} for role in ROLES}
# operation: (targets, allowed cells, attempt)
OPERATIONS: dict[str, tuple[tuple[str, ...], dict[str, set[str]], Callable[[Database, str, str], str]]] = {
    "get_account": (TARGETS, {
        **EVERYONE_OWN,
        "counselor": {"own", "student_in_scope"}, "deputy_secretary": {"own", "student_in_scope"},
        SA: {"own", "student_in_scope", "student_out_of_scope", "staff"},
    }, on_account(handlers.get_account)),
    "reset_password": (TARGETS, {"counselor": {"student_in_scope"}, "deputy_secretary": {"student_in_scope"},
                                 SA: {"staff"}}, on_account(admin.reset_password)),
    "set_password": (TARGETS, {SA: {"staff"}},
                     on_account(lambda db, c, u: handlers.set_password(db, c, u, "Set-by-admin-2027"))),
    "disable_account": (TARGETS, {SA: {"student_in_scope", "student_out_of_scope", "staff"}},
                        on_account(lambda db, c, u: admin.disable_account(db, c, u, "测试"))),
    "edit_account": (("own", "staff", "unknown"), {SA: {"own", "staff"}},
                     on_account(lambda db, c, u: admin.edit_account(db, c, u, "改过的名字"))),
    "enable_account": (TARGETS, {SA: {"own", "student_in_scope", "student_out_of_scope", "staff"}},
                       on_account(admin.enable_account)),
    "unlock_account": (TARGETS, {SA: {"own", "student_in_scope", "student_out_of_scope", "staff"}},
                       on_account(admin.unlock_account)),
    "force_logout": (TARGETS, {SA: {"own", "student_in_scope", "student_out_of_scope", "staff"}},
                     on_account(admin.force_logout)),
    "list_grants": (TARGETS, {**EVERYONE_OWN, "deputy_secretary": {"own", "staff"},
                              SA: {"own", "student_in_scope", "student_out_of_scope", "staff"}},
                    on_account(grants.list_grants)),
    "grant": (("own", "staff_in_college", "staff_out_of_college", "unknown"),
              {"deputy_secretary": {"staff_in_college"}, SA: {"staff_in_college", "staff_out_of_college"}},
              grant_to),
    "revoke_grant": (("own", "grant_in_college", "grant_out_of_college", "unknown"),
                     {"deputy_secretary": {"grant_in_college"}, SA: {"grant_in_college", "grant_out_of_college"}},
                     revoke),
    "issue_initial_passwords": (("class_in_scope", "class_out_of_scope"), {r: {"class_in_scope"} for r in COUNSELORS},
                                lambda db, actor, target: rpc_outcome(lambda: admin.issue_initial_passwords(
                                    db, CALLERS[actor], "2023010101" if target == "class_in_scope" else "2023020101"))),
    "search_accounts": (("all",), {r: {"all"} for r in (*COUNSELORS, SA)}, untargeted(admin.search_accounts)),
    "count_accounts": (("all",), {SA: {"all"}}, untargeted(handlers.count_accounts)),
    "login_log": (("all",), {SA: {"all"}}, untargeted(admin.login_log)),
    "online_sessions": (("all",), {SA: {"all"}}, untargeted(admin.online_sessions)),
    "create_account": (("new_counselor",), {SA: {"new_counselor"}}, lambda db, actor, target: rpc_outcome(
        lambda: handlers.create_account(db, CALLERS[actor], f"10002{next(_classes):02d}", "新老师", "counselor",
                                        "classes", [fresh_class("01")], PASSWORD))),
    "staff_template": (("all",), {SA: {"all"}}, lambda db, actor, target: rpc_outcome(
        lambda: staff_import.staff_template(CALLERS[actor]))),
    "import_staff": (("all",), {SA: {"all"}}, lambda db, actor, target: rpc_outcome(
        lambda: staff_import.import_staff(db, CALLERS[actor], staff_workbook(f"20{next(_classes):05d}")))),
    "change_password": (("own",), {r: {"own"} for r in ROLES}, lambda db, actor, target: rpc_outcome(
        lambda: handlers.change_password(db, CALLERS[actor], PASSWORD, "Changed-2027-pw"))),
    "my_sessions": (("own",), {r: {"own"} for r in ROLES}, untargeted(admin.my_sessions)),
    "my_logins": (("own",), {r: {"own"} for r in ROLES}, untargeted(admin.my_logins)),
    "org_units": (("all",), {r: {"all"} for r in STAFF_ROLES}, untargeted(org.org_units)),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_identity_authorization_matrix(db: Database, operation: str) -> None:
    targets, allowed, attempt = OPERATIONS[operation]
    Matrix(actors=ROLES, targets=targets, allowed=allowed).check(lambda a, t: attempt(db, a, t), operation)


def test_the_matrix_catches_a_wrong_rule(db: Database) -> None:
    """A matrix that says housing may read any account must fail: the helper can fail."""
    wrong = Matrix(actors=ROLES, targets=TARGETS, allowed={**EVERYONE_OWN, "housing_centre": set(TARGETS)})
    with pytest.raises(AssertionError, match="housing_centre +× staff"):
        wrong.check(lambda a, t: OPERATIONS["get_account"][2](db, a, t))
