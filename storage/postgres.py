"""The PostgreSQL adaptor: production, shared by every server process (an asyncpg pool).

asyncpg prepares and caches each statement per pooled connection, so the hot statements
(append, history, cursors) are parsed once per connection. ``jsonb`` is coded with msgspec;
``timestamptz`` and ``date`` come back as Python values. Every driver or network failure is
sorted into ``storage.errors`` at one place, ``_sorted``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import date, datetime
from typing import Any, Literal

import asyncpg
import msgspec

from domain.records import Appended, NewMessage
from storage import migrations
from storage.errors import Conflict, StoreUnavailable, Unstorable
from storage.messages import stored

_MIGRATION_LOCK = 0x6B696E6C  # "kinl": one migrator at a time across processes

# SQLSTATE classes and codes that mean "the database could not answer now": connection
# failures (08), too many clients and other resource limits (53), operator intervention
# such as a shutdown (57, which includes 57014, a statement timeout), and a pooled
# connection found mid-operation. Data errors (22) and check or not-null violations (23,
# but unique) mean "never storable as it is".
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_REFUSED_CLASSES = ("22", "23")


def sort(exc: BaseException) -> BaseException:
    """``exc`` as the ``storage.errors`` it means, or ``exc`` itself (a bug stays a bug)."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict(exc.constraint_name or "unique")
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state[:2] in _UNAVAILABLE_CLASSES:
            return StoreUnavailable(f"PostgreSQL unavailable: {type(exc).__name__}")
        if state[:2] in _REFUSED_CLASSES:
            return Unstorable(f"PostgreSQL refused: {type(exc).__name__}")
    elif isinstance(exc, TimeoutError | OSError | asyncpg.InterfaceError):
        # InterfaceError covers "another operation is in progress" and a closed pool
        return StoreUnavailable(f"PostgreSQL unavailable: {type(exc).__name__}")
    return exc


@contextmanager
def _sorted() -> Iterator[None]:
    """Driver and network failures raised as ``storage.errors`` (``sort``)."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, OSError) as exc:
        sorted_as = sort(exc)
        if sorted_as is exc:
            raise
        raise sorted_as from exc


async def _keep_session(_: asyncpg.Connection) -> None:
    """Kinline sets no session state (no LISTEN, SET or session advisory lock), so the
    pool's default reset, a round trip on every release, has nothing to undo."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            schema="pg_catalog",
            format="text",
            encoder=lambda v: msgspec.json.encode(v).decode(),
            decoder=msgspec.json.decode,
        )


class _PgSql:
    """``storage.sql.Sql`` on one asyncpg connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        with _sorted():
            return list(await self._conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        with _sorted():
            return await self._conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        with _sorted():
            return await self._conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        with _sorted():
            status: str = await self._conn.execute(sql, *args)
        tail = status.rpartition(" ")[2]
        return int(tail) if tail.isdigit() else 0

    def when(self, value: Any) -> datetime:
        moment: datetime = value
        return moment

    def day(self, value: Any) -> date:
        day: date = value
        return day

    def unjson(self, value: Any) -> Any:
        return value


class PostgresDatabase:
    """``storage.sql.Database`` on PostgreSQL."""

    dialect: Literal["postgres"] = "postgres"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        timeout: float = 5.0,
        setup: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> PostgresDatabase:
        """A pool on ``url``; ``setup`` runs on a connection each time it is taken from the
        pool (asyncpg's ``setup``: tests listen to auto_explain's plans with it)."""

        with _sorted():
            try:
                pool = await asyncpg.create_pool(
                    url,
                    min_size=min_size,
                    max_size=max_size,
                    timeout=timeout,
                    command_timeout=timeout,
                    init=_init_connection,
                    setup=setup,
                    reset=_keep_session,
                )
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        with _sorted():
            async with self._pool.acquire(timeout=5.0) as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[_PgSql]:
        async with self._conn() as conn:
            yield _PgSql(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_PgSql]:
        async with self._conn() as conn:
            with _sorted():
                async with conn.transaction():
                    yield _PgSql(conn)

    async def ping(self) -> None:
        async with self.read() as sql:
            await sql.fetchval("SELECT 1")

    async def migrate(self) -> list[str]:
        applied: list[str] = []
        async with self.write() as sql:
            await sql.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await sql.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await sql.fetch("SELECT version FROM schema_migrations")}
            for migration in migrations.load("postgres"):
                if migration.version in done:
                    continue
                await sql.execute(migration.sql)
                await sql.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    async def append_messages(self, items: Sequence[NewMessage]) -> list[Appended | None]:
        """One statement, one round trip: ``kinline_append`` (migrations 0007, 0021, 0025) locks
        the conversations, dedupes by cid, numbers the new messages and stores their keyword
        flags; the life-cycle trigger runs on each row in the same statement and its effect
        comes back with the rows."""
        if not items:
            return []
        async with self.read() as sql:  # one statement: its own transaction
            rows = await sql.fetch(
                "SELECT * FROM kinline_append($1, $2, $3, $4, $5, $6, $7)",
                [i.conversation_id for i in items],
                [i.sender_id for i in items],
                [i.sender_role for i in items],
                [i.cid for i in items],
                [i.kind for i in items],
                [i.body for i in items],
                [i.flags for i in items],
            )
        found = {r["ord"] - 1: r for r in rows}
        by_key = {
            (items[i].conversation_id, items[i].sender_id, items[i].cid): r
            for i, r in found.items()
        }
        results: list[Appended | None] = []
        for index, item in enumerate(items):
            row = found.get(index)
            repeat = row is None  # a cid repeated later in the batch has no row of its own
            row = row or by_key.get((item.conversation_id, item.sender_id, item.cid))
            if row is None:
                results.append(None)
                continue
            message = stored(item, row["id"], row["seq"], row["created_at"])
            if row["created"] and not repeat:
                results.append(Appended(message, True, row["effect"], row["cycle"]))
            else:
                results.append(Appended(message, created=False))
        return results
