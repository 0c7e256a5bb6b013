"""Password hashing (argon2id) and the complexity policy (I3)."""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's minimum for argon2id (m=19 MiB, t=2, p=1); raise, never lower. Hashes made
# with weaker settings are upgraded at the next successful login (`needs_rehash`).
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

MIN_LENGTH = 10
MAX_LENGTH = 128  # bounds the hashing work one request can ask for
MIN_CLASSES = 3


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
    return problems
