"""The college a class belongs to: from roster's org tree as identity last heard it
(`org.units_changed`), else from the class code (R6)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# {code: (kind, parent_code)} — the part of the org tree a decision needs.
Tree = Mapping[str, tuple[str, str | None]]
NO_TREE: Tree = MappingProxyType({})
CLASS_CODE_LENGTH = 10  # R6: year (4) + college (2) + major (2) + class (2)


def college_of_class(class_code: str) -> str | None:
    """The college a class belongs to, read from its code (R6); None if it is not such a code."""
    if len(class_code) == CLASS_CODE_LENGTH and class_code.isdigit():
        return class_code[4:6]
    return None


def college_in_tree(code: str, tree: Tree) -> str | None:
    """The college at or above `code` in the tree; None when the chain breaks or loops."""
    seen: set[str] = set()
    current: str | None = code
    while current is not None and current not in seen:
        seen.add(current)
        found = tree.get(current)
        if found is None:
            return None
        kind, parent = found
        if kind == "college":
            return current
        current = parent
    return None


def class_college(class_code: str, tree: Tree = NO_TREE) -> str | None:
    """The college of a class. Roster's tree wins: a class may sit in a college its code does
    not name (codes are kept when units are reorganised). A known class whose chain does not
    reach a college yet has none (refuse rather than guess)."""
    if class_code in tree:
        return college_in_tree(class_code, tree)
    # Not heard of yet: roster saves a unit and publishes it in one transaction, but the event
    # may still be on its way (or the class predates the event); its code still names its college.
    return college_of_class(class_code)

