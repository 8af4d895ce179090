"""Portable SQL: the features added after the first two stores are written once, here.

``Store`` kept a method per question, written twice (``storage/sqlite.py`` and
``storage/postgres.py``). The areas that came later (the duty desk, inmate information,
visits, complaints, announcements, figures) are plain functions over a ``Database``, which
both stores provide as ``store.db``. Their SQL is the common subset of the two dialects:

- placeholders are ``$1, $2, ...`` (rewritten to SQLite's ``?1, ?2, ...``);
- no ``now()``: the caller passes the time (``utcnow()``), which also lets tests script it;
- no arrays or ``ANY``: ``ids_in(ids)`` makes an ``IN (...)`` list of integers;
- ``RETURNING`` and ``ON CONFLICT`` work on both (SQLite 3.35 or newer);
- a ``datetime`` parameter is stored as ``timestamptz`` (PostgreSQL) or integer microseconds
  (SQLite), a ``date`` as ``date`` or ISO text, a ``dict``/``list`` as ``jsonb`` or JSON text;
  read them back with ``sql.when``, ``sql.day`` and ``sql.unjson``.

``db.write()`` is one transaction (PostgreSQL: a pooled connection in a transaction; SQLite:
``BEGIN IMMEDIATE`` on the single writer, so a conditional ``UPDATE ... WHERE state = ...``
is atomic on both). ``db.read()`` reads committed state. Errors are the store's own:
``Conflict`` for a unique violation, ``StoreUnavailable`` when the database cannot answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol


class Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


class Sql(Protocol):
    """One connection: in a transaction (``db.write()``) or reading (``db.read()``)."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...
    async def fetchval(self, sql: str, *args: Any) -> Any: ...
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""

    def when(self, value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime."""

    def day(self, value: Any) -> date:
        """A stored date."""

    def unjson(self, value: Any) -> Any:
        """A stored JSON value, decoded."""


class Database(Protocol):
    @property
    def dialect(self) -> Literal["postgres", "sqlite"]: ...

    def read(self) -> AbstractAsyncContextManager[Sql]: ...
    def write(self) -> AbstractAsyncContextManager[Sql]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def for_update(db: Database) -> str:
    """`` FOR UPDATE`` to lock the rows a read inside ``db.write()`` will change, on
    PostgreSQL; nothing on SQLite, whose one ``BEGIN IMMEDIATE`` writer excludes the rest."""
    return " FOR UPDATE" if db.dialect == "postgres" else ""


def ids_in(ids: Iterable[int]) -> str:
    """``(1,2,3)`` for an ``IN`` clause (``(NULL)`` when empty: matches nothing)."""
    return "(" + (",".join(str(int(i)) for i in ids) or "NULL") + ")"


_PLACEHOLDER = re.compile(r"\$(\d+)")


def to_sqlite(sql: str) -> str:
    """``$n`` placeholders as SQLite's ``?n``."""
    return _PLACEHOLDER.sub(r"?\1", sql)
