"""The SQLite adaptor: the embedded default (one process, a file under ``./var/``, WAL mode).

SQLite has one writer at a time, so writes go through one connection behind an asyncio lock,
each in a ``BEGIN IMMEDIATE`` transaction; reads use a second connection, which in WAL mode
sees the last committed state without waiting for the writer. Placeholders ``$n`` become
``?n``; a ``datetime`` is stored as integer microseconds since the epoch, a ``date`` as ISO
text, a ``dict``/``list`` as JSON text.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import msgspec

from domain import chain
from domain.records import Appended, NewMessage
from storage import migrations
from storage.errors import Conflict, StoreUnavailable, Unstorable
from storage.messages import MESSAGE_SELECT, message_of, stored
from storage.sql import to_sqlite

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_us(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return msgspec.json.encode(value).decode()
    return value


def _message_hash(
    previous: bytes,
    at_us: int,
    body: str,
    conv: int,
    kind: str,
    sender: int,
    seq: int,
    attachments: Sequence[str] = (),
) -> bytes:
    """SQL ``kinline_message_hash``: one message's link (``domain.chain``); ``attachments``
    the hex SHA-256 of its files (migration 0018)."""
    form = chain.message_form(
        at_us=at_us,
        body=body,
        conv=conv,
        kind=kind,
        sender=sender,
        seq=seq,
        attachments=attachments,
    )
    return chain.step(previous, form)


def _audit_hash(
    previous: bytes,
    entry_id: int,
    at: int,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: int | None,
    prison_id: int | None,
    before: str | None,
    after: str | None,
) -> bytes:
    """SQL ``kinline_audit_hash``: one audit entry's link (``domain.chain``), for the
    trigger of migration 0014 that chains every entry however it was inserted."""
    form = chain.audit_form(
        id=entry_id,
        at_us=at,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        prison_id=prison_id,
        before=None if before is None else msgspec.json.decode(before),
        after=None if after is None else msgspec.json.decode(after),
    )
    return chain.step(previous, form)


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (trigger bodies included) without executescript,
    which would commit behind our back and break the migration's atomicity."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        yield buffer


# Primary result codes that mean "cannot now" (busy, locked, out of memory, read-only, I/O,
# disk full, cannot open): https://www.sqlite.org/rescode.html. Anything else from
# sqlite3.OperationalError (SQLITE_ERROR: a syntax error, no such table) is a bug.
_UNAVAILABLE_CODES = frozenset({5, 6, 7, 8, 9, 10, 13, 14, 15})


@contextmanager
def _sorted() -> Iterator[None]:
    """Driver failures as ``storage.errors``."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise Conflict(str(exc).rpartition(": ")[2]) from exc
        raise Unstorable(str(exc)) from exc
    except (sqlite3.DataError, sqlite3.InterfaceError) as exc:
        raise Unstorable(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", 1) & 0xFF in _UNAVAILABLE_CODES:
            raise StoreUnavailable(f"SQLite unavailable: {exc}") from exc
        raise
    except ValueError as exc:  # aiosqlite's "no active connection" after close
        raise StoreUnavailable(f"SQLite unavailable: {exc}") from exc


class _SqliteSql:
    """``storage.sql.Sql`` on one aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        with _sorted():
            async with self._conn.execute(to_sqlite(sql), [_param(a) for a in args]) as cursor:
                return list(await cursor.fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> int:
        with _sorted():
            cursor = await self._conn.execute(to_sqlite(sql), [_param(a) for a in args])
        count: int = cursor.rowcount
        await cursor.close()
        return max(count, 0)

    def when(self, value: Any) -> datetime:
        return from_us(int(value))

    def day(self, value: Any) -> date:
        return date.fromisoformat(str(value))

    def unjson(self, value: Any) -> Any:
        return None if value is None else msgspec.json.decode(value)


class SqliteDatabase:
    """``storage.sql.Database`` on SQLite."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> SqliteDatabase:
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            writer = await cls._connect(path)
            async with writer.execute("PRAGMA journal_mode = WAL") as cursor:
                await cursor.fetchall()  # an unread result row would hold a lock
            reader = await cls._connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
        return cls(writer, reader)

    @staticmethod
    async def _connect(path: str) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA busy_timeout = 5000")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.create_function("kinline_message_hash", 7, _message_hash, deterministic=True)
        await conn.create_function("kinline_audit_hash", 10, _audit_hash, deterministic=True)
        return conn

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[_SqliteSql]:
        yield _SqliteSql(self._reader)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_SqliteSql]:
        """One write transaction at a time; driver errors sorted into ``storage.errors``."""
        async with self._lock:
            conn = self._writer
            with _sorted():
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _SqliteSql(conn)
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")

    async def ping(self) -> None:
        async with self.read() as sql:
            await sql.fetchval("SELECT 1")

    async def migrate(self) -> list[str]:
        applied: list[str] = []
        async with self.write() as sql:
            await sql.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at integer NOT NULL)"
            )
            done = {r[0] for r in await sql.fetch("SELECT version FROM schema_migrations")}
            for migration in migrations.load("sqlite"):
                if migration.version in done:
                    continue
                for statement in _statements(migration.sql):
                    await sql.execute(statement)
                await sql.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    datetime.now(UTC),
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    async def append_messages(self, items: Sequence[NewMessage]) -> list[Appended | None]:
        """Under ``BEGIN IMMEDIATE`` (the whole database is the lock): read the batch's
        conversations, find the cids already stored, insert the rest in batch order with the
        next seqs, each with its hash (``h_n = sha256(h_(n-1) || C(m))`` from the
        conversation's ``chain_head``, migration 0014). The life-cycle trigger (migration
        0007) moves ``last_seq`` and the state, and writes each message's ``effect`` and
        ``cycle``, read back with the rows."""
        if not items:
            return []
        results: list[Appended | None] = [None] * len(items)
        async with self.write() as sql:
            convs = sorted({i.conversation_id for i in items})
            marks = ",".join(f"${n}" for n in range(1, len(convs) + 1))
            rows = await sql.fetch(
                f"SELECT id, last_seq, chain_head FROM conversations WHERE id IN ({marks})",
                *convs,
            )
            seqs = {r["id"]: r["last_seq"] for r in rows}
            heads: dict[int, bytes] = {r["id"]: r["chain_head"] for r in rows}
            first: dict[tuple[int, int, str], int] = {}  # key -> index of its first item
            fresh: list[int] = []  # message ids inserted, in batch order
            for index, item in enumerate(items):
                if item.conversation_id not in seqs:
                    continue
                key = (item.conversation_id, item.sender_id, item.cid)
                if key in first:
                    continue
                first[key] = index
                row = await sql.fetchrow(
                    MESSAGE_SELECT
                    + " WHERE m.conversation_id = $1 AND m.sender_id = $2 AND m.cid = $3",
                    *key,
                )
                if row is not None:
                    results[index] = Appended(message_of(sql, row), created=False)
                    continue
                seqs[item.conversation_id] += 1
                seq, now = seqs[item.conversation_id], datetime.now(UTC)
                files = await sql.fetch(  # bound to its key: the trigger makes them its own
                    "SELECT sha256 FROM attachments WHERE conversation_id = $1"
                    " AND owner_id = $2 AND cid = $3 AND message_id IS NULL ORDER BY id",
                    *key,
                )
                link = _message_hash(
                    heads[item.conversation_id],
                    to_us(now),
                    item.body,
                    item.conversation_id,
                    item.kind,
                    item.sender_id,
                    seq,
                    [f["sha256"] for f in files],
                )
                heads[item.conversation_id] = link  # the trigger keeps it as the head
                fresh.append(
                    await sql.fetchval(
                        "INSERT INTO messages (conversation_id, seq, sender_id, sender_role,"
                        " cid, kind, body, created_at, hash, flags)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                        item.conversation_id,
                        seq,
                        item.sender_id,
                        item.sender_role,
                        item.cid,
                        item.kind,
                        item.body,
                        now,
                        link,
                        item.flags,
                    )
                )
            written = await sql.fetch(
                "SELECT id, seq, created_at, effect, cycle FROM messages WHERE id IN ("
                + ",".join(str(int(i)) for i in fresh or [0])
                + ")"
            )
        by_id = {r["id"]: r for r in written}
        made = iter(fresh)
        for index, item in enumerate(items):
            key = (item.conversation_id, item.sender_id, item.cid)
            if key not in first:
                continue
            if first[key] != index:
                done = results[first[key]]
                results[index] = None if done is None else Appended(done.message, created=False)
            elif results[index] is None:
                row = by_id[next(made)]
                message = stored(item, row["id"], row["seq"], from_us(row["created_at"]))
                results[index] = Appended(message, True, row["effect"], row["cycle"])
        return results
