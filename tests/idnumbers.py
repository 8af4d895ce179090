"""Valid resident id numbers (GB 11643) for tests: real checks refuse made-up ones."""

from __future__ import annotations

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def valid_id(serial: int, born: str = "19900101", area: str = "440101") -> str:
    """The id number of person ``serial`` (0-999) born on ``born`` (YYYYMMDD) in ``area``."""
    body = f"{area}{born}{serial % 1000:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]
