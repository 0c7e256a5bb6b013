import pytest

from services.common.caller import Caller, Scope, system_caller
from services.common.errors import Forbidden


def test_header_round_trip() -> None:
    caller = Caller("u1", "1000004", "counselor", Scope("classes", ("2023010101",)), "cid-1", "sess")
    assert Caller.from_dict(__import__("json").loads(caller.to_header())) == caller


@pytest.mark.parametrize("scope,allowed", [
    (Scope("institution"), True),
    (Scope("college", ("01",)), True),
    (Scope("college", ("02",)), False),
    (Scope("classes", ("2023010101",)), True),
    (Scope("classes", ("2023010102",)), False),
    (Scope("self", ("202301010101",)), True),
    (Scope("self", ("202301010102",)), False),
    (Scope("area", ("340100",)), False),
    (Scope("none"), False),
])
def test_scope_matrix(scope: Scope, allowed: bool) -> None:
    assert scope.covers_student("202301010101", "01", "2023010101") is allowed


def test_require_role_and_student() -> None:
    counselor = Caller("u", "1000004", "counselor", Scope("classes", ("2023010101",)))
    counselor.require_role("counselor", "student_affairs")
    with pytest.raises(Forbidden, match="辅导员"):
        counselor.require_role("housing_centre")
    with pytest.raises(Forbidden, match="数据权限"):
        counselor.require_student("202301010201", "01", "2023010102")
    system = system_caller("roster")
    system.require_role("housing_centre")
    system.require_student("x", "y", "z")
