"""National id numbers: never stored in clear.

A keyed hash (HMAC-SHA256 under ``settings.secret``) finds a duplicate registration without
keeping the number; the last four characters are kept for display (an officer comparing a
link request with documents). Without the key a leaked database cannot be searched for a
given id number. Every process of a deployment must share the secret, or the same number
hashes differently.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

# GB 11643-1999: the 18th character checks the first 17 digits (ISO 7064 MOD 11-2).
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class InvalidIdNumber(ValueError):
    """Not a resident identity number (the message says why)."""


class NoSecret(RuntimeError):
    """The server has no secret configured, so id numbers cannot be hashed."""


def normalize(id_number: str) -> str:
    """Spaces and dashes dropped, letters upper-cased (a trailing ``x`` is ``X``)."""
    return "".join(c for c in id_number if c not in " -").upper()


def digest(secret: str, id_number: str) -> bytes:
    if not secret:
        raise NoSecret("KINLINE_SECRET is not set")
    return hmac.new(secret.encode(), normalize(id_number).encode(), hashlib.sha256).digest()


def problem(id_number: str, today: date | None = None) -> str | None:
    """Why ``id_number`` is not a resident identity number (None when it is one): 18
    characters, 17 digits then a digit or X, a real birth date (characters 7-14) between 1900
    and today, and the GB 11643 check character."""
    number = normalize(id_number)
    if len(number) != 18 or not number[:17].isdigit() or number[17] not in "0123456789X":
        return "an id number has 18 characters: 17 digits, then a digit or X"
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return "the birth date in this id number does not exist"
    if not date(1900, 1, 1) <= born <= (today or date.today()):
        return "the birth date in this id number is not plausible"
    total = sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True))
    if _CHECK[total % 11] != number[17]:
        return "this id number's check character is wrong; please check it"
    return None


def last4(id_number: str) -> str:
    return normalize(id_number)[-4:]
