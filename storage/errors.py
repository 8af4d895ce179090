"""The errors storage raises on purpose; a driver's own exception never leaves an adaptor.

Each adaptor (``storage/sqlite.py``, ``storage/postgres.py``) sorts its driver's failures into
these at one place, so callers decide on meaning, not on the database underneath:

- ``StoreUnavailable``: the database could not answer (down, cut, out of connection slots,
  a statement timeout, a connection busy with another operation). Nothing was committed; the
  caller answers ``unavailable`` and acknowledges nothing; trying again later may succeed.
- ``Unstorable``: the database will never store this input (a value it cannot represent, a
  check it breaks). Trying again cannot succeed; the caller refuses that one input, and a
  batch is split so the other inputs in it still go through.
- ``Conflict``: a uniqueness rule was broken; ``what`` names it (a constraint or column).
- ``NotFound``: the object does not exist.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error storage raises on purpose."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or did not answer in time. Nothing was committed."""


class Unstorable(StoreError):
    """The database refused this input for good (it cannot be stored as it is)."""


class NotFound(StoreError):
    """The object does not exist."""


class Conflict(StoreError):
    """A uniqueness rule was broken (duplicate login, prison code, inmate number...)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
