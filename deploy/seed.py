"""Deterministic demo data, loaded over RPC as a system caller.

`make run` calls `seed(proxy)` the first time (roster empty) and to finish a seed that
was cut short. Tests reuse the pieces: `demo_students()`, `demo_beds(...)`, `bed_plan(...)`
are pure; `seed(proxy)` takes a started `ClusterRpcProxy` whose context data carries
`system_caller("seed")`, e.g.

    with ClusterRpcProxy({"AMQP_URI": uri}, context_data=seed_context(), timeout=30) as rpc:
        seed(rpc)

Every step is safe to repeat: org units are upserted, registered students are counted as
existing, beds are idempotent by label, a repeated bed assignment changes nothing, and an
existing demo account only has its password set again.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from faker import Faker
from faker.providers.ssn.zh_CN import Provider as ChineseIdProvider

from services.common.caller import (
    ACADEMIC_AFFAIRS,
    AID_OPERATOR,
    CONTEXT_KEY,
    COUNSELOR,
    HOUSING_CENTRE,
    IT_CENTRE,
    STUDENT,
    STUDENT_AFFAIRS,
    system_caller,
)
from services.common.errors import Conflict, NotFound

SEED = 2026
# Satisfies the password policy (I3): 10 characters, 4 character classes.
DEMO_PASSWORD = "Xueji@2026"

ENTRY_YEAR = "2023"
COLLEGE = "01"
MAJOR = "01"
CLASSES = 4
STUDENTS_PER_CLASS = 50
STUDENT_COUNT = CLASSES * STUDENTS_PER_CLASS
# Ages 18 to 22 on the day of enrolment. A fixed day, not today, keeps the data the same
# whenever it is made (Faker's ssn() counts ages back from today).
ENROLMENT_DAY = date(2023, 9, 1)
MIN_AGE, MAX_AGE = 18, 22

MALE, FEMALE = "1", "2"  # GB/T 2261.1, as roster stores them
ROOM_CAPACITY = 4
SPARE_ROOMS = 2  # per building, so the demo can show assigning and moving
BUILDINGS = {
    MALE: {"building_code": "B1", "building_name": "1号楼", "gender_policy": "M"},
    FEMALE: {"building_code": "B2", "building_name": "2号楼", "gender_policy": "F"},
}

# The bounded waits for what other services learn from roster's events.
EVENT_WAIT_SECONDS = 90.0


def class_code(class_no: int) -> str:
    return f"{ENTRY_YEAR}{COLLEGE}{MAJOR}{class_no:02d}"


def org_units() -> list[dict[str, Any]]:
    units: list[dict[str, Any]] = [
        {"code": COLLEGE, "name": "计算机学院", "kind": "college", "parent_code": None},
        {"code": COLLEGE + MAJOR, "name": "计算机科学与技术", "kind": "major", "parent_code": COLLEGE},
    ]
    units += [
        {"code": class_code(n), "name": f"计科23{n:02d}", "kind": "class", "parent_code": COLLEGE + MAJOR}
        for n in range(1, CLASSES + 1)
    ]
    return units


def national_id(rng: random.Random, area_code: str, birth: date, gender: str) -> str:
    """An 18-digit ID number (GB 11643) whose birth date and gender digit match the record."""
    sequence = f"{rng.randrange(100):02d}"
    gender_digit = rng.choice("13579" if gender == MALE else "02468")
    body = f"{area_code}{birth:%Y%m%d}{sequence}{gender_digit}"
    check = (1 - 2 * int(body, 13)) % 11  # ISO 7064 MOD 11-2, as GB 11643 defines it
    return body + ("X" if check == 10 else str(check))


def demo_students() -> list[dict[str, str]]:
    """200 students, 50 per class, numbered by R6: year + college + major + class + seat; full records
    as roster's `check_record` asks them (required fields, codes) for `register_students`."""
    fake = Faker("zh_CN")
    fake.seed_instance(SEED)
    rng = fake.random
    earliest = ENROLMENT_DAY.replace(year=ENROLMENT_DAY.year - MAX_AGE - 1) + timedelta(days=1)
    latest = ENROLMENT_DAY.replace(year=ENROLMENT_DAY.year - MIN_AGE)
    span = (latest - earliest).days
    students = []
    for class_no in range(1, CLASSES + 1):
        for seat in range(1, STUDENTS_PER_CLASS + 1):
            gender = rng.choice((MALE, FEMALE))
            birth = earliest + timedelta(days=rng.randrange(span + 1))
            id_number = national_id(rng, rng.choice(ChineseIdProvider.area_codes), birth, gender)
            students.append({
                "student_number": f"{class_code(class_no)}{seat:02d}",
                # zh_CN's name_male()/name_female() ignore gender; the given names do not.
                "name": fake.last_name() + (fake.first_name_male() if gender == MALE else fake.first_name_female()),
                # Both derived from the ID number, so the three always agree (R13).
                "gender": MALE if int(id_number[16]) % 2 else FEMALE,
                "national_id": id_number,
                # 81/82/83: the number of a Hong Kong, Macao or Taiwan residence permit (R13)
                "id_type": "7" if id_number.startswith(("81", "82", "83")) else "1",
                "birth_date": f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}",
                "ethnicity": "01",  # the record's codes (roster/data/code_tables.json): 汉族
                "political_status": "03",  # 共青团员
                "entry_month": f"{ENROLMENT_DAY:%Y-%m}",
                "class_code": class_code(class_no),
                "level": "3",  # 本科
                "program_years": "4",
                "study_form": "1",  # 普通全日制
            })
    return students


def demo_beds(students: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Rooms of 4 in a men's and a women's building: enough for everyone, plus spare rooms."""
    beds = []
    for gender, building in BUILDINGS.items():
        residents = sum(1 for s in students if s["gender"] == gender)
        rooms = math.ceil(residents / ROOM_CAPACITY) + SPARE_ROOMS
        for index in range(rooms):
            floor, number = divmod(index, 20)
            room_no = f"{floor + 1}{number + 1:02d}"  # 101..120, 201..
            for bed_no in range(1, ROOM_CAPACITY + 1):
                beds.append({**building, "room_no": room_no, "capacity": ROOM_CAPACITY,
                             "bed_no": str(bed_no)})
    return beds


def bed_label(bed: dict[str, Any]) -> str:
    return f"{bed['building_name']}-{bed['room_no']}-{bed['bed_no']}"


def bed_plan(students: list[dict[str, str]], beds: list[dict[str, Any]]) -> dict[str, str]:
    """student_number → bed label: in number order, the next free bed of their building."""
    free = {
        gender: [bed_label(b) for b in beds if b["building_code"] == building["building_code"]]
        for gender, building in BUILDINGS.items()
    }
    plan = {}
    for student in sorted(students, key=lambda s: s["student_number"]):
        plan[student["student_number"]] = free[student["gender"]].pop(0)
    return plan


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: str
    scope_kind: str
    scope_ids: tuple[str, ...] = ()


STAFF_ACCOUNTS = (
    DemoAccount("1000001", "学生处 王老师", STUDENT_AFFAIRS, "institution"),
    DemoAccount("1000002", "教务处 赵老师", ACADEMIC_AFFAIRS, "institution"),
    DemoAccount("1000003", "宿管中心 孙老师", HOUSING_CENTRE, "institution"),
    DemoAccount("1000004", "辅导员 李老师", COUNSELOR, "classes", (class_code(1), class_code(2))),
    DemoAccount("1000005", "资助中心 周老师", AID_OPERATOR, "institution"),
    DemoAccount("1000006", "信息技术中心 吴老师", IT_CENTRE, "institution"),
)
# The first student; identity made the account from `student.registered`.
DEMO_STUDENT = DemoAccount(f"{class_code(1)}01", "", STUDENT, "self", (f"{class_code(1)}01",))
DEMO_ACCOUNTS = (*STAFF_ACCOUNTS, DEMO_STUDENT)


def seed_context() -> dict[str, str]:
    """Nameko context data that makes the seed's RPCs come from a system caller."""
    return {CONTEXT_KEY: system_caller("seed").to_header()}


T = TypeVar("T")


def wait_for(what: str, attempt: Callable[[], T | None], timeout: float = EVENT_WAIT_SECONDS) -> T:
    """Calls `attempt` until it returns something other than None; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        result = attempt()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"seed: gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def seed(rpc: Any, log: Callable[[str], None] = print) -> dict[str, int]:
    """Loads the demo data through the services' RPC; `rpc` is a started cluster proxy."""
    students = demo_students()
    beds = demo_beds(students)

    rpc.roster.upsert_org_units(org_units())
    registered = rpc.roster.register_students(students)
    log(f"seed: roster: {registered['registered']} students registered, {registered['existing']} existing")

    rpc.housing.create_beds(beds)

    def housing_knows_all() -> bool | None:
        return True if rpc.housing.health().get("students_known", 0) >= len(students) else None

    wait_for("housing to learn the students from roster's events", housing_knows_all)
    plan = bed_plan(students, beds)
    for number, label in plan.items():
        rpc.housing.assign_bed(number, label)
    log(f"seed: housing: {len(beds)} beds, {len(plan)} assigned")

    # A system caller's passwords need no change at first login: the demo logins work at once.
    for account in STAFF_ACCOUNTS:
        try:
            rpc.identity.create_account(account.username, account.display_name, account.role,
                                        account.scope_kind, list(account.scope_ids), DEMO_PASSWORD)
        except Conflict:
            rpc.identity.set_password(account.username, DEMO_PASSWORD)  # made by an earlier seed

    def student_password_set() -> bool | None:
        try:
            rpc.identity.set_password(DEMO_STUDENT.username, DEMO_PASSWORD)
        except NotFound:
            return None  # identity makes the account from roster's event
        return True

    wait_for(f"identity account {DEMO_STUDENT.username}", student_password_set)
    log(f"seed: identity: {len(DEMO_ACCOUNTS)} demo accounts, password {DEMO_PASSWORD}")
    return {"students": len(students), "beds": len(beds), "assigned": len(plan),
            "accounts": len(DEMO_ACCOUNTS)}
