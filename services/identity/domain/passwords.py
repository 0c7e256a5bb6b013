"""Password hashing (argon2id) and the password policy (I3): complexity, the common-password
list, no reuse of recent passwords, expiry, and one-time temporary passwords."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's minimum for argon2id (m=19 MiB, t=2, p=1); raise, never lower. Hashes made
# with weaker settings are upgraded at the next successful login (`needs_rehash`).
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

MIN_LENGTH = 10
MAX_LENGTH = 128  # bounds the hashing work one request can ask for
MIN_CLASSES = 3
HISTORY_DEPTH = 5  # a new password may not be any of the last 5
DEFAULT_MAX_AGE_DAYS = 180  # 0 disables expiry

COMMON_LIST = Path(__file__).resolve().parent.parent / "data" / "common_passwords.txt"
# "Password2024!" is "password" with decoration: strip what people append or prepend.
DECORATION = re.compile(r"^[^a-z]+|[^a-z]+$")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches. Without a hash (unknown user, no password set) the
    same work is still done, so timing does not tell whether the account exists."""
    try:
        return HASHER.verify(password_hash or _decoy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


def character_classes(password: str) -> int:
    """How many of: lower-case letters, upper-case letters, digits, other characters."""
    return sum((
        any("a" <= c <= "z" for c in password),
        any("A" <= c <= "Z" for c in password),
        any("0" <= c <= "9" for c in password),
        any(not (c.isascii() and c.isalnum()) for c in password),
    ))


def policy_problems(password: str, username: str | None = None) -> list[str]:
    """What is wrong with a new password, as messages for the user; empty when it is fine."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"密码长度不能少于{MIN_LENGTH}位")
    if len(password) > MAX_LENGTH:
        problems.append(f"密码长度不能超过{MAX_LENGTH}位")
    if character_classes(password) < MIN_CLASSES:
        problems.append(f"密码须包含大写字母、小写字母、数字、特殊字符中的至少{MIN_CLASSES}类")
    if any(c.isspace() for c in password):
        problems.append("密码不能包含空格")
    if username and username.lower() in password.lower():
        problems.append("密码不能包含用户名")
    if is_common(password):
        problems.append("密码过于常见，请换一个不易猜到的密码")
    return problems


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The project's list (data/common_passwords.txt, built by data/build_common_passwords.py)."""
    lines = COMMON_LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def is_common(password: str) -> bool:
    """In the list as typed (case-insensitive), or once leading/trailing digits and symbols are
    taken off, when what remains is a listed word of 4 or more letters."""
    lowered = password.lower()
    words = common_passwords()
    if lowered in words:
        return True
    core = DECORATION.sub("", lowered)
    return len(core) >= 4 and core in words


def reuses_recent(password: str, recent_hashes: Iterable[str]) -> bool:
    """True when `password` matches one of the account's recent hashes (newest first)."""
    return any(verify_password(h, password) for h in list(recent_hashes)[:HISTORY_DEPTH])


def is_expired(changed_at: datetime | None, now: datetime, max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> bool:
    """Older than the maximum age (I3: periodic change); 0 days disables expiry. An account
    whose password was never set is not "expired": it has no password to log in with."""
    if max_age_days <= 0 or changed_at is None:
        return False
    return now - changed_at >= timedelta(days=max_age_days)


TEMP_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "IlO0o1")


def temporary_password(length: int = 12) -> str:
    """A one-time password for a reset or a new account: meets the policy, avoids characters
    that are confused on paper (I, l, 1, O, o, 0), and has a separator so it has 4 classes."""
    while True:
        body = "".join(secrets.choice(TEMP_ALPHABET) for _ in range(length - 1))
        candidate = f"{body[:5]}-{body[5:]}"
        if not policy_problems(candidate) and character_classes(candidate) == 4:
            return candidate
