"""Password hashing and the complexity policy (I3)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

from services.identity.domain.passwords import (
    HASHER,
    character_classes,
    hash_password,
    needs_rehash,
    policy_problems,
    verify_password,
)


def test_hashes_are_argon2id_at_least_at_the_owasp_minimum() -> None:
    hashed = hash_password("Xueji-2027-pass")
    assert hashed.startswith("$argon2id$")
    assert HASHER.memory_cost >= 19456 and HASHER.time_cost >= 2 and HASHER.parallelism >= 1
    assert "m=19456,t=2,p=1" in hashed


def test_verify_accepts_the_password_and_nothing_else() -> None:
    hashed = hash_password("Xueji-2027-pass")
    assert verify_password(hashed, "Xueji-2027-pass") is True
    assert verify_password(hashed, "xueji-2027-pass") is False
    assert verify_password(hashed, "") is False


def test_verify_without_a_hash_or_with_garbage_is_false() -> None:
    assert verify_password(None, "anything-At-all-1") is False
    assert verify_password("not-a-hash", "anything-At-all-1") is False


def test_salts_differ() -> None:
    assert hash_password("Xueji-2027-pass") != hash_password("Xueji-2027-pass")


def test_weaker_hashes_are_due_for_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("Xueji-2027-pass")
    assert needs_rehash(weak) is True
    assert needs_rehash(hash_password("Xueji-2027-pass")) is False
    other_profile = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY).hash("Xueji-2027-pass")
    assert needs_rehash(other_profile) is True


@pytest.mark.parametrize(("password", "classes"), [
    ("abcdefghij", 1), ("abcdefGHIJ", 2), ("abcdeFGH12", 3), ("abcDE12!@#", 4), ("密码密码abc123", 3),
])
def test_character_classes(password: str, classes: int) -> None:
    assert character_classes(password) == classes


def test_a_good_password_passes() -> None:
    assert policy_problems("Xueji-2027-pass") == []
    assert policy_problems("abcdef1234!") == []  # three classes are enough


@pytest.mark.parametrize(("password", "message"), [
    ("Ab1!", "密码长度不能少于10位"),
    ("Abc1!" * 26, "密码长度不能超过128位"),
    ("abcdefgh12", "至少3类"),
    ("ABCDEFGHIJKL", "至少3类"),
    ("Abc def 123", "不能包含空格"),
])
def test_policy_problems_are_explained_in_chinese(password: str, message: str) -> None:
    problems = policy_problems(password)
    assert any(message in p for p in problems), problems


def test_password_may_not_contain_the_username() -> None:
    assert policy_problems("Pw-1000001-x", "1000001") == ["密码不能包含用户名"]
    assert policy_problems("Pw-1000001-x", "1000002") == []
