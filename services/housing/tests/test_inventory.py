"""Inventory rules: bed specs, labels, idempotent creation, capacity and consistency."""

from __future__ import annotations

from typing import Any

import pytest

from services.housing.domain.inventory import (
    MAX_CAPACITY,
    BedSpec,
    KnownBed,
    KnownBuilding,
    KnownRoom,
    bed_label,
    parse_bed_spec,
    plan_new_beds,
)
from services.housing.domain.refusal import Refusal


def raw(**changes: Any) -> dict[str, Any]:
    base = {"building_code": "B1", "building_name": "1号楼", "gender_policy": "M",
            "room_no": "101", "capacity": 4, "bed_no": "1"}
    base.update(changes)
    return base


def spec(bed_no: str = "1", **changes: Any) -> BedSpec:
    return parse_bed_spec(raw(bed_no=bed_no, **changes), 1)


def test_label_is_building_name_room_and_bed() -> None:
    assert bed_label("1号楼", "101", "1") == "1号楼-101-1"
    assert spec("2").label == "1号楼-101-2"
    assert spec().room_key == ("B1", "101")


def test_a_valid_spec_is_parsed_and_trimmed() -> None:
    parsed = parse_bed_spec(raw(building_name=" 1号楼 ", room_no=101, bed_no=3), 1)
    assert parsed == BedSpec("B1", "1号楼", "M", "101", 4, "3")


@pytest.mark.parametrize(("changes", "message"), [
    ({"building_code": ""}, "第 7 条：缺少楼栋编号"),
    ({"building_name": None}, "第 7 条：缺少楼栋名称"),
    ({"gender_policy": "男"}, "第 7 条：性别类型必须是 M（男生楼）、F（女生楼）或 mixed（男女混合楼）"),
    ({"room_no": "1-01"}, "第 7 条：房间号“1-01”只能由字母和数字组成，最长 16 位"),
    ({"bed_no": "上铺 1"}, "第 7 条：床位号“上铺 1”只能由字母和数字组成，最长 8 位"),
    ({"capacity": 0}, f"第 7 条：房间容量必须是 1 到 {MAX_CAPACITY} 之间的整数"),
    ({"capacity": "4"}, f"第 7 条：房间容量必须是 1 到 {MAX_CAPACITY} 之间的整数"),
    ({"capacity": True}, f"第 7 条：房间容量必须是 1 到 {MAX_CAPACITY} 之间的整数"),
    ({"building_code": "一号"}, "第 7 条：楼栋编号“一号”只能由字母、数字和下划线组成，最长 16 位"),
    ({"building_name": "学生公寓-A"}, "第 7 条：楼栋名称最多 32 个字，且不能含“-”"),
    ({"floor": 1}, "第 7 条：不认识的字段 floor"),
])
def test_bad_specs_are_refused_naming_the_row(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(Refusal) as refused:
        parse_bed_spec(raw(**changes), 7)
    assert refused.value.message == message
    assert refused.value.conflict is False


def test_a_spec_must_be_an_object() -> None:
    with pytest.raises(Refusal, match="第 2 条：床位数据格式不正确"):
        parse_bed_spec(["B1"], 2)


def test_new_beds_are_planned_in_order() -> None:
    specs = [spec("1"), spec("2")]
    assert plan_new_beds(specs, {}, {}, {}) == specs


def test_existing_beds_and_repeats_are_skipped() -> None:
    known = {"1号楼-101-1": KnownBed("B1", "101", "1")}
    plan = plan_new_beds([spec("1"), spec("2"), spec("2")], {"B1": KnownBuilding("1号楼", "M")},
                         {("B1", "101"): KnownRoom(4, 1)}, known)
    assert [s.label for s in plan] == ["1号楼-101-2"]


def test_a_building_registered_differently_is_a_conflict() -> None:
    with pytest.raises(Refusal) as refused:
        plan_new_beds([spec()], {"B1": KnownBuilding("1号楼", "F")}, {}, {})
    assert refused.value.conflict is True
    assert "已登记为“1号楼”（女生楼）" in refused.value.message


def test_a_batch_disagreeing_about_a_building_is_invalid() -> None:
    with pytest.raises(Refusal, match="第 2 条：楼栋 B1 的名称或性别类型与前面的数据不一致") as refused:
        plan_new_beds([spec("1"), spec("2", gender_policy="mixed")], {}, {}, {})
    assert refused.value.conflict is False


def test_a_room_registered_with_another_capacity_is_a_conflict() -> None:
    with pytest.raises(Refusal, match="已登记容量为 6") as refused:
        plan_new_beds([spec()], {}, {("B1", "101"): KnownRoom(6, 0)}, {})
    assert refused.value.conflict is True


def test_a_batch_disagreeing_about_a_capacity_is_invalid() -> None:
    with pytest.raises(Refusal, match="第 2 条：房间 1号楼-101 的容量与前面的数据不一致"):
        plan_new_beds([spec("1"), spec("2", capacity=6)], {}, {}, {})


def test_a_room_cannot_hold_more_beds_than_its_capacity() -> None:
    with pytest.raises(Refusal, match="容量为 2，床位数不能超过容量"):
        plan_new_beds([spec(str(n), capacity=2) for n in (1, 2, 3)], {}, {}, {})
    with pytest.raises(Refusal, match="容量为 4，床位数不能超过容量"):
        plan_new_beds([spec("5")], {}, {("B1", "101"): KnownRoom(4, 4)}, {})
    assert len(plan_new_beds([spec("4")], {}, {("B1", "101"): KnownRoom(4, 3)}, {})) == 1


def test_a_label_taken_by_another_building_is_a_conflict() -> None:
    with pytest.raises(Refusal, match="床位编号 1号楼-101-1 已被其他楼栋的床位使用") as refused:
        plan_new_beds([spec()], {}, {}, {"1号楼-101-1": KnownBed("B9", "101", "1")})
    assert refused.value.conflict is True


def test_two_buildings_with_one_name_cannot_make_one_label_twice() -> None:
    with pytest.raises(Refusal, match="第 2 条：床位编号 1号楼-101-1 与前面的另一张床位重复"):
        plan_new_beds([spec(), spec(building_code="B9")], {}, {}, {})
