"""Password hashing (argon2id) and the minimum rules a new password must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
# The most common passwords and their obvious variants; a real list is checked in full.
COMMON = frozenset(
    {
        "123456",
        "123456789",
        "12345678",
        "1234567890",
        "password",
        "qwerty",
        "111111",
        "123123",
        "abc123",
        "1q2w3e4r",
        "password1",
        "iloveyou",
        "000000",
        "qwerty123",
        "1qaz2wsx",
        "123qwe",
        "a123456",
        "woaini1314",
        "5201314",
        "qq123456",
        "aa123456",
        "88888888",
        "11111111",
        "147258369",
        "987654321",
        "passw0rd",
        "admin123",
        "welcome1",
        "zxcvbnm123",
        "1234567890a",
        "password123",
        "qwertyuiop",
        "0123456789",
        "abcd123456",
        "a1234567890",
    }
)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if password.lower() in COMMON or len(set(password)) < 4:
        raise WeakPassword("this password is too common")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


DUMMY_HASH = _hasher.hash("kinline-timing-equaliser")  # verified against when a login is unknown
