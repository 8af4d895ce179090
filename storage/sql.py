"""The one storage design: a ``Database`` adaptor per dialect, every area written once over it.

An adaptor (``storage/sqlite.py``, ``storage/postgres.py``) owns what differs between the two
databases and nothing else: connections and transactions, the placeholder rewrite, type
codecs, migrations, health, the sorting of driver errors into ``storage.errors``, and the one
genuinely dialect-specific hot path, the message append. Every area (``accounts``,
``sessions``, ``links``, ``conversations``, ``messages``, ``audit_trail``, ``desk``, ``visits``,
``complaints``, ``figures``...) is plain functions over a ``Database``, in the SQL both
dialects share:

- placeholders are ``$1, $2, ...`` (rewritten to SQLite's ``?1, ?2, ...``);
- no ``now()``: the caller passes the time (``utcnow()``), which also lets tests script it;
- no arrays or ``ANY``: ``ids_in(ids)`` makes an ``IN (...)`` list of integers, and
  ``any_of(db, expr, values)`` a match against any of a batch of values (one statement
  whatever the count on PostgreSQL, so the batch reads of a hot path stay prepared);
- ``RETURNING`` and ``ON CONFLICT`` work on both (SQLite 3.35 or newer);
- a ``datetime`` parameter is stored as ``timestamptz`` (PostgreSQL) or integer microseconds
  (SQLite), a ``date`` as ``date`` or ISO text, a ``dict``/``list`` as ``jsonb`` or JSON text;
  read them back with ``sql.when``, ``sql.day`` and ``sql.unjson``.

- a parameter tested for NULL is cast (``CAST($1 AS bigint) IS NULL``): PostgreSQL must know
  its type, SQLite ignores the cast.

``db.write()`` is one transaction (PostgreSQL: a pooled connection in a transaction; SQLite:
``BEGIN IMMEDIATE`` on the single writer, so a conditional ``UPDATE ... WHERE state = ...``
is atomic on both): an audited change writes its audit entry inside it. ``db.read()`` reads
committed state. Errors are ``storage.errors``' own, never a driver's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

from domain.records import Appended, NewMessage

MAX_PAGE = 500


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

    async def append_messages(self, items: Sequence[NewMessage]) -> list[Appended | None]:
        """Append a batch in one transaction; ``None`` for an item whose conversation does
        not exist. Per call: every new message commits, or none. A conversation's seqs run
        1, 2, 3... with no gap and no duplicate however many processes append at once (seq is
        assigned under a lock on the conversation row). ``(conversation, sender, cid)`` is
        stored once: appending it again returns the stored message with ``created=False``.
        Each new message comes back with the effect the life-cycle rule (migration 0007) gave
        it, decided in the same transaction."""

    async def migrate(self) -> list[str]:
        """Apply pending migrations; the names applied (empty when up to date)."""

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers."""

    async def close(self) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def clamp_limit(limit: int) -> int:
    """A page size between 1 and ``MAX_PAGE``."""
    return max(1, min(limit, MAX_PAGE))


def for_update(db: Database) -> str:
    """`` FOR UPDATE`` to lock the rows a read inside ``db.write()`` will change, on
    PostgreSQL; nothing on SQLite, whose one ``BEGIN IMMEDIATE`` writer excludes the rest."""
    return " FOR UPDATE" if db.dialect == "postgres" else ""


def ids_in(ids: Iterable[int]) -> str:
    """``(1,2,3)`` for an ``IN`` clause (``(NULL)`` when empty: matches nothing)."""
    return "(" + (",".join(str(int(i)) for i in ids) or "NULL") + ")"


def any_of(
    db: Database, expr: str, values: Sequence[Any], *, first: int = 1
) -> tuple[str, list[Any]]:
    """``expr`` equal to one of ``values``, as SQL and its parameters from ``$first`` on:
    PostgreSQL gets one array parameter (``= ANY``: the same prepared statement for any
    count), SQLite a placeholder each."""
    if db.dialect == "postgres":
        return f"{expr} = ANY(${first})", [list(values)]
    marks = ", ".join(f"${first + i}" for i in range(len(values)))
    return f"{expr} IN ({marks or 'NULL'})", list(values)


_PLACEHOLDER = re.compile(r"\$(\d+)")


def to_sqlite(sql: str) -> str:
    """``$n`` placeholders as SQLite's ``?n``."""
    return _PLACEHOLDER.sub(r"?\1", sql)


def joined(db: Database, column: str) -> str:
    """An aggregate of ``column`` as comma-separated text (``"3,1"``; NULL over no rows), in
    no particular order: PostgreSQL's ``string_agg``, SQLite's ``group_concat``."""
    if db.dialect == "postgres":
        return f"string_agg(CAST({column} AS text), ',')"
    return f"group_concat({column})"


def ints(text: str | None) -> tuple[int, ...]:
    """A ``joined`` aggregate back as sorted integers."""
    return tuple(sorted(int(p) for p in text.split(","))) if text else ()
