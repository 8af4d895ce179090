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


class NoSecret(RuntimeError):
    """The server has no secret configured, so id numbers cannot be hashed."""


def normalize(id_number: str) -> str:
    """Spaces and dashes dropped, letters upper-cased (a trailing ``x`` is ``X``)."""
    return "".join(c for c in id_number if c not in " -").upper()


def digest(secret: str, id_number: str) -> bytes:
    if not secret:
        raise NoSecret("KINLINE_SECRET is not set")
    return hmac.new(secret.encode(), normalize(id_number).encode(), hashlib.sha256).digest()


def last4(id_number: str) -> str:
    return normalize(id_number)[-4:]
