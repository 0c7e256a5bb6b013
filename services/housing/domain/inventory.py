"""The bed inventory (H1): buildings with a gender policy, rooms with a capacity, beds
with a label people read ("1号楼-101-1"). Adding beds is idempotent by label."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.housing.domain.refusal import Refusal

GENDER_POLICIES = {"M": "男生楼", "F": "女生楼", "mixed": "男女混合楼"}
# Largest room the inventory accepts; bigger numbers are typing mistakes.
MAX_CAPACITY = 20

_CODE = re.compile(r"^[0-9A-Za-z_]{1,16}$")
_ROOM_NO = re.compile(r"^[0-9A-Za-z]{1,16}$")
_BED_NO = re.compile(r"^[0-9A-Za-z]{1,8}$")
FIELDS = ("building_code", "building_name", "gender_policy", "room_no", "capacity", "bed_no")


def bed_label(building_name: str, room_no: str, bed_no: str) -> str:
    return f"{building_name}-{room_no}-{bed_no}"


@dataclass(frozen=True)
class BedSpec:
    """One bed as the housing centre describes it, with its room and building."""

    building_code: str
    building_name: str
    gender_policy: str
    room_no: str
    capacity: int
    bed_no: str

    @property
    def label(self) -> str:
        return bed_label(self.building_name, self.room_no, self.bed_no)

    @property
    def room_key(self) -> tuple[str, str]:
        return (self.building_code, self.room_no)


@dataclass(frozen=True)
class KnownBuilding:
    name: str
    gender_policy: str


@dataclass(frozen=True)
class KnownRoom:
    capacity: int
    beds: int


@dataclass(frozen=True)
class KnownBed:
    building_code: str
    room_no: str
    bed_no: str


def _text(raw: Mapping[str, Any], key: str, what: str, where: str) -> str:
    value = raw.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and key in ("room_no", "bed_no"):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise Refusal(f"{where}缺少{what}")
    return value.strip()


def parse_bed_spec(raw: Any, row: int) -> BedSpec:
    """Check one submitted bed; `row` (1-based) names it in the message."""
    where = f"第 {row} 条："
    if not isinstance(raw, Mapping):
        raise Refusal(f"{where}床位数据格式不正确")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise Refusal(f"{where}不认识的字段 {', '.join(map(str, unknown))}")
    code = _text(raw, "building_code", "楼栋编号", where)
    name = _text(raw, "building_name", "楼栋名称", where)
    policy = _text(raw, "gender_policy", "性别类型", where)
    room_no = _text(raw, "room_no", "房间号", where)
    bed_no = _text(raw, "bed_no", "床位号", where)
    capacity = raw.get("capacity")
    if not _CODE.match(code):
        raise Refusal(f"{where}楼栋编号“{code}”只能由字母、数字和下划线组成，最长 16 位")
    if len(name) > 32 or "-" in name:
        raise Refusal(f"{where}楼栋名称最多 32 个字，且不能含“-”")
    if policy not in GENDER_POLICIES:
        raise Refusal(f"{where}性别类型必须是 M（男生楼）、F（女生楼）或 mixed（男女混合楼）")
    if not _ROOM_NO.match(room_no):
        raise Refusal(f"{where}房间号“{room_no}”只能由字母和数字组成，最长 16 位")
    if not _BED_NO.match(bed_no):
        raise Refusal(f"{where}床位号“{bed_no}”只能由字母和数字组成，最长 8 位")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= MAX_CAPACITY:
        raise Refusal(f"{where}房间容量必须是 1 到 {MAX_CAPACITY} 之间的整数")
    return BedSpec(code, name, policy, room_no, capacity, bed_no)


def plan_new_beds(
    specs: Sequence[BedSpec],
    buildings: Mapping[str, KnownBuilding],
    rooms: Mapping[tuple[str, str], KnownRoom],
    beds: Mapping[str, KnownBed],
) -> list[BedSpec]:
    """The beds to create, in submitted order; beds that exist already are skipped.

    `buildings`, `rooms` and `beds` (by label) are what the inventory holds now. The
    whole batch is refused if any bed contradicts the inventory or the rest of the batch.
    """
    seen_buildings: dict[str, KnownBuilding] = {}
    seen_capacity: dict[tuple[str, str], int] = {}
    seen_labels: dict[str, KnownBed] = {}
    added: dict[tuple[str, str], int] = {}
    plan: list[BedSpec] = []
    for row, spec in enumerate(specs, start=1):
        building = KnownBuilding(spec.building_name, spec.gender_policy)
        known = buildings.get(spec.building_code)
        if known is not None and known != building:
            raise Refusal(
                f"楼栋 {spec.building_code} 已登记为“{known.name}”（{GENDER_POLICIES[known.gender_policy]}），"
                f"与第 {row} 条不一致", conflict=True)
        if seen_buildings.setdefault(spec.building_code, building) != building:
            raise Refusal(f"第 {row} 条：楼栋 {spec.building_code} 的名称或性别类型与前面的数据不一致")

        room = rooms.get(spec.room_key)
        if room is not None and room.capacity != spec.capacity:
            raise Refusal(f"房间 {spec.building_name}-{spec.room_no} 已登记容量为 {room.capacity}，"
                          f"与第 {row} 条不一致", conflict=True)
        if seen_capacity.setdefault(spec.room_key, spec.capacity) != spec.capacity:
            raise Refusal(f"第 {row} 条：房间 {spec.building_name}-{spec.room_no} 的容量与前面的数据不一致")

        place = KnownBed(spec.building_code, spec.room_no, spec.bed_no)
        existing = beds.get(spec.label)
        if existing is not None:
            if existing != place:
                raise Refusal(f"床位编号 {spec.label} 已被其他楼栋的床位使用", conflict=True)
            continue
        if spec.label in seen_labels:
            if seen_labels[spec.label] != place:
                raise Refusal(f"第 {row} 条：床位编号 {spec.label} 与前面的另一张床位重复")
            continue
        seen_labels[spec.label] = place
        added[spec.room_key] = added.get(spec.room_key, 0) + 1
        in_room = (room.beds if room is not None else 0) + added[spec.room_key]
        if in_room > spec.capacity:
            raise Refusal(f"房间 {spec.building_name}-{spec.room_no} 容量为 {spec.capacity}，"
                          f"床位数不能超过容量")
        plan.append(spec)
    return plan


# --- campuses, buildings and rooms beyond their beds (H1) -------------------------------
MAX_FEE = 100_000  # yuan per year; more is a typing mistake
_COLLEGE = re.compile(r"^[0-9A-Za-z]{1,16}$")
ROOM_FIELDS = ("floor", "room_type", "fee", "college_code")


@dataclass(frozen=True)
class RoomDetails:
    """What the housing centre keeps of a room besides its beds: floor, type (e.g. 四人间),
    yearly fee in yuan, and the college it is allocated to (None: open to every college)."""

    floor: int | None = None
    room_type: str = ""
    fee: int | None = None
    college_code: str | None = None


def check_code(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _CODE.match(value.strip()):
        raise Refusal(f"{what}只能由字母、数字和下划线组成，最长 16 位")
    return value.strip()


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 32 or "-" in value:
        raise Refusal(f"{what}必须填写，最多 32 个字，且不能含“-”")
    return value.strip()


def check_policy(value: Any) -> str:
    if value not in GENDER_POLICIES:
        raise Refusal("性别类型必须是 M（男生楼）、F（女生楼）或 mixed（男女混合楼）")
    return str(value)


def _optional_int(value: Any, what: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Refusal(f"{what}必须是 {low} 到 {high} 之间的整数")
    return value


def check_college(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not _COLLEGE.match(value.strip()):
        raise Refusal("学院代码只能由字母和数字组成，最长 16 位")
    return value.strip()


def parse_room_details(raw: Mapping[str, Any]) -> RoomDetails:
    room_type = raw.get("room_type") or ""
    if not isinstance(room_type, str) or len(room_type.strip()) > 16:
        raise Refusal("房间类型最多 16 个字")
    return RoomDetails(
        floor=_optional_int(raw.get("floor"), "楼层", -5, 200),
        room_type=room_type.strip(),
        fee=_optional_int(raw.get("fee"), "收费标准（元/年）", 0, MAX_FEE),
        college_code=check_college(raw.get("college_code")),
    )
