"""Password hashing (argon2id) and the rules a new password must meet.

Strength is judged by zxcvbn (an estimator of guesses from dictionaries, keyboard patterns,
dates and repeats; score 0-4) with the person's own phone, name, login and id number as
extra dictionary words, plus two plain rules: at least ``MIN_LENGTH`` characters, and none of
those personal strings inside the password. Only the first ``JUDGED_CHARS`` characters are
judged (zxcvbn's cost grows with length; a longer password is stronger anyway).
"""

from __future__ import annotations

from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

MIN_LENGTH = 10
MIN_SCORE = 3  # zxcvbn: "safely unguessable: moderate protection from offline slow-hash attack"
JUDGED_CHARS = 100
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


def check_strength(password: str, personal: Iterable[str | None] = ()) -> None:
    """Raise ``WeakPassword`` (its text says why) unless ``password`` may be used by the person
    whose phone, name, login or id number ``personal`` holds."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if password.lower() in COMMON or len(set(password)) < 4:
        raise WeakPassword("this password is too common")
    mine = [p.strip().lower() for p in personal if p and len(p.strip()) >= 4]
    squeezed = "".join(password.lower().split())
    if any("".join(p.split()) in squeezed for p in mine):
        raise WeakPassword("a password may not contain your phone, name or id number")
    if zxcvbn(password[:JUDGED_CHARS], user_inputs=mine)["score"] < MIN_SCORE:
        raise WeakPassword("this password is too easy to guess; use a few unrelated words")


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
