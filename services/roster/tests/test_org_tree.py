"""The org tree's rules (domain/org_tree.py): kinds, names, R6 code shapes, parents, codes agreeing with
the parent on creation, reorganisation keeping codes, deletion, and the tree as listed."""

from __future__ import annotations

from typing import Any

import pytest

from services.roster.domain import org_tree as rules
from services.roster.domain.org_tree import Unit

YEAR = 2026
SAVED = {u.code: u for u in (
    Unit("01", "计算机学院", "college"), Unit("02", "数学学院", "college"),
    Unit("0101", "计算机科学与技术", "major", "01"), Unit("0201", "数学", "major", "02"),
    Unit("2023010101", "计科2301", "class", "0101"),
)}


def u(code: str, kind: str, parent: str | None = None, name: str = "单位") -> dict[str, Any]:
    return {"code": code, "name": name, "kind": kind, "parent_code": parent}


def problems(*units: dict[str, Any], saved: dict[str, Unit] = SAVED) -> list[tuple[str, str, str]]:
    return [(p.code, p.field, p.message) for p in rules.check_save(units, saved, YEAR)[1]]


def test_a_whole_new_tree_in_one_save_in_any_order() -> None:
    units, found = rules.check_save([u("2026090101", "class", "0901"), u("0901", "major", "09"),
                                     u("09", "college")], {}, YEAR)
    assert found == []
    assert [x.code for x in units] == ["2026090101", "0901", "09"]


@pytest.mark.parametrize(("unit", "field", "message"), [
    (u("03", "campus"), "kind", "组织单位类型应为学院、专业或班级"),
    (u("03", "college", name=""), "name", "请填写名称"),
    (u("03", "college", name="长" * 65), "name", "不能超过 64 个字"),
    (u("", "college"), "code", "请填写代码"),
    (u("3", "college"), "code", "学院代码应为 2 位数字"),
    (u("0a", "college"), "code", "学院代码应为 2 位数字"),
    (u("013", "major", "01"), "code", "专业代码应为 4 位数字"),
    (u("202301010", "class", "0101"), "code", "班级代码应为 10 位数字"),
    (u("1900010102", "class", "0101"), "code", "前 4 位应为入学年份（1950–2027），不是 1900"),
    (u("2028010102", "class", "0101"), "code", "不是 2028"),
    (u("03", "college", "01"), "parent_code", "学院没有上级单位"),
    (u("0102", "major"), "parent_code", "请选择专业所属的学院"),
    (u("0102", "major", "0101"), "parent_code", "专业的上级应为学院，0101 是专业"),
    (u("2023010102", "class", "01"), "parent_code", "班级的上级应为专业，01 是学院"),
    (u("2023010102", "class", "0109"), "parent_code", "上级单位 0109 不存在"),
    (u("0202", "major", "01"), "code", "应以所属学院的代码 01 开头"),
    (u("2023020101", "class", "0101"), "code", "第 5–8 位应为所属专业的代码 0101"),
    (u("0101", "class", "0101"), "kind", "已有单位的类型不能修改（现为专业）"),
])
def test_each_rule_names_the_unit_and_the_field(unit: dict[str, Any], field: str, message: str) -> None:
    [(code, got_field, got_message)] = problems(unit)
    assert (code, got_field) == (unit["code"], field) and message in got_message


def test_every_problem_is_reported_not_just_the_first() -> None:
    found = problems(u("3", "college", "01", name=""), u("0102", "major", "0109"), u("2023010102", "class", "0101"))
    assert [(c, f) for c, f, _ in found] == [("3", "name"), ("3", "code"), ("3", "parent_code"),
                                             ("0102", "parent_code")]


def test_an_existing_unit_may_move_to_another_parent_of_its_kind_keeping_its_code() -> None:
    assert problems(u("2023010101", "class", "0201", name="数学2301")) == []  # 01's class now under 0201
    assert problems(u("0101", "major", "02")) == []
    # ...but still only under a parent of the right kind, and the code's shape is not asked again.
    assert problems(u("2023010101", "class", "02"))[0][1] == "parent_code"


def test_a_unit_cannot_be_its_own_parent_nor_loop() -> None:
    assert problems(u("0102", "major", "0102"))[0][2] == "上级单位不能是本单位"
    looped = problems(u("0102", "major", "0103"), u("0103", "major", "0102"))
    assert [f for _, f, _ in looped] == ["parent_code", "parent_code"]


def test_the_same_code_twice_each_is_checked_and_the_last_wins() -> None:
    units, found = rules.check_save([u("0102", "major", "01", "软件"), u("0102", "major", "01", "软件工程")],
                                    SAVED, YEAR)
    assert found == [] and [(x.code, x.name) for x in units] == [("0102", "软件工程")]
    assert problems(u("0102", "major", "01", ""), u("0102", "major", "01", "软件工程"))[0][1] == "name"


def test_a_child_in_the_same_save_as_its_new_parent_must_agree_with_it() -> None:
    assert problems(u("03", "college"), u("0301", "major", "03"), u("2025030101", "class", "0301")) == []
    assert problems(u("03", "college"), u("0401", "major", "03"))[0][:2] == ("0401", "code")


def test_deletion_only_of_empty_units() -> None:
    major = SAVED["0101"]
    assert "下还有 2 个下级单位" in (rules.deletion_refusal(major, 2, 0) or "")
    assert "有 3 名学生的学籍记录" in (rules.deletion_refusal(major, 0, 3) or "")
    assert rules.deletion_refusal(major, 0, 0) is None


def test_tree_order_depth_and_counts_rolled_up() -> None:
    tree = {**SAVED, "2023010102": Unit("2023010102", "计科2302", "class", "0101"),
            "2023020101": Unit("2023020101", "数学2301", "class", "0201"),
            "2022010101": Unit("2022010101", "移入", "class", "0201")}
    rows = [(x.code, depth) for x, depth in rules.ordered(tree)]
    assert rows == [("01", 0), ("0101", 1), ("2023010101", 2), ("2023010102", 2),
                    ("02", 0), ("0201", 1), ("2022010101", 2), ("2023020101", 2)]
    totals = rules.rolled_up(tree, {"2023010101": 30, "2023010102": 5, "2022010101": 7, "9999999999": 4})
    assert (totals["01"], totals["0101"], totals["02"], totals["0201"], totals["2023020101"]) == (35, 35, 7, 7, 0)


def test_ancestors_descendants_and_units_only_reachable_from_each_other() -> None:
    assert rules.ancestors("2023010101", SAVED) == ["0101", "01"]
    assert rules.descendants(["01"], SAVED) == {"01", "0101", "2023010101"}
    loop = {"a": Unit("a", "甲", "major", "b"), "b": Unit("b", "乙", "major", "a")}
    assert sorted(x.code for x, _ in rules.ordered(loop)) == ["a", "b"]


def test_an_add_only_save_names_the_unit_holding_a_code_already_in_use() -> None:
    existing = {"01": Unit("01", "计算机学院", "college"), "0101": Unit("0101", "计科", "major", "01")}
    assert rules.taken_code([{"code": "02", "name": "数学学院", "kind": "college"}], existing) is None
    assert rules.taken_code([{"code": "02", "name": "数学学院", "kind": "college"},
                                {"code": " 0101 ", "name": "新专业", "kind": "major", "parent_code": "01"}],
                               existing) == "代码 0101 已被专业“计科”使用"
