"""The college of a class: roster's org tree wins, the class code (R6) only for unknown classes."""

from __future__ import annotations

from services.identity.domain.accounts import Viewer
from services.identity.domain.grants import Grant, may_grant, within_granter_scope
from services.identity.domain.org import class_college, college_in_tree, college_of_class

TREE = {
    "01": ("college", None), "02": ("college", None),
    "0101": ("major", "01"), "0201": ("major", "02"),
    "2023020105": ("class", "0101"),  # its code names college 02; it belongs to 01
    "2023010107": ("class", "0201"),  # its code names college 01; it belongs to 02
    "2023010108": ("class", "0109"),  # its major not heard of
    "L1": ("major", "L2"), "L2": ("major", "L1"),  # a loop must not hang
}
DEPUTY_01 = Viewer("1000002", "deputy_secretary", "college", ("01",))


def test_the_tree_wins_over_the_code() -> None:
    assert class_college("2023020105", TREE) == "01"
    assert class_college("2023010107", TREE) == "02"
    assert college_of_class("2023020105") == "02"


def test_an_unknown_class_falls_back_to_its_code_and_a_broken_chain_has_no_college() -> None:
    assert class_college("2023030101", TREE) == "03"
    assert class_college("2023030101") == "03"
    assert class_college("2023010108", TREE) is None
    assert class_college("ABC", TREE) is None
    assert college_in_tree("L1", TREE) is None
    assert college_in_tree("01", TREE) == "01"


def test_a_deputy_secretary_grants_by_the_tree() -> None:
    def allowed(*classes: str) -> bool:
        return within_granter_scope(DEPUTY_01, Grant("counselor", "classes", classes), TREE)

    assert allowed("2023020105") and allowed("2023020105", "2023010199")
    assert not allowed("2023010107") and not allowed("2023010108") and not allowed("2023020199")
    assert not allowed("2023020105", "2023010107")  # every class must be theirs
    assert may_grant(DEPUTY_01, "1000004", Grant("counselor", "classes", ("2023010107",)), TREE) \
        == "授权超出了您本人的角色或数据范围"
