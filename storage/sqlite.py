"""``SqliteStore``: the embedded default (one process, a file under ``./var/``, WAL mode).

SQLite has one writer at a time, so writes go through one connection behind an asyncio lock,
each in a ``BEGIN IMMEDIATE`` transaction; reads use a second connection, which in WAL mode
sees the last committed state without waiting for the writer. Timestamps are stored as integer
microseconds since the epoch and returned as aware UTC datetimes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import msgspec

from storage import appending, migrations, records
from storage.base import (
    Appended,
    AuditEntry,
    Conflict,
    Conversation,
    FamilyLink,
    Inmate,
    LinkClaim,
    LinkState,
    Message,
    NewMessage,
    NotFound,
    Prison,
    Role,
    StoreUnavailable,
    User,
)
from storage.paging import clamp_limit, page_bounds
from storage.sql import to_sqlite

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_USER = """
SELECT u.id, u.role, u.login, u.name, u.phone, u.password_hash,
       (SELECT group_concat(prison_id) FROM
          (SELECT prison_id FROM user_prisons p WHERE p.user_id = u.id ORDER BY prison_id))
       AS prison_ids
FROM users u
"""


def to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def now_us() -> int:
    return to_us(datetime.now(UTC))


def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def _unjson(text: str | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


def _user(row: sqlite3.Row) -> User:
    prisons = tuple(int(p) for p in row["prison_ids"].split(",")) if row["prison_ids"] else ()
    return User(row["id"], row["role"], row["login"], row["name"], prisons, row["phone"])


def _message(row: sqlite3.Row) -> Message:
    return records.message(row, from_us)


def _conversation(row: sqlite3.Row) -> Conversation:
    return records.conversation(row, from_us)


def _audit(row: sqlite3.Row) -> AuditEntry:
    return records.audit(row, from_us, _unjson)


def _link(row: sqlite3.Row) -> FamilyLink:
    return records.link(row, from_us)


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


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SqliteStore:
    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._lock = asyncio.Lock()
        self.db = SqliteDatabase(self)  # portable SQL for the later areas (storage/sql.py)

    @classmethod
    async def open(cls, path: str) -> SqliteStore:
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
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA busy_timeout = 5000")
        await db.execute("PRAGMA synchronous = NORMAL")
        return db

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction at a time; errors mapped to the store's own."""
        async with self._lock:
            db = self._writer
            try:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" in str(exc):
                    raise Conflict(str(exc).rpartition(": ")[2]) from exc
                raise
            except (sqlite3.OperationalError, ValueError) as exc:
                # ValueError: aiosqlite's "no active connection" after close
                raise StoreUnavailable(f"SQLite unavailable: {exc}") from exc

    async def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            async with self._reader.execute(sql, tuple(args)) as cursor:
                return list(await cursor.fetchall())
        except (sqlite3.OperationalError, ValueError) as exc:
            raise StoreUnavailable(f"SQLite unavailable: {exc}") from exc

    async def _row(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self._rows(sql, args)
        return rows[0] if rows else None

    async def ping(self) -> None:
        await self._rows("SELECT 1")

    async def migrate(self) -> list[str]:
        applied: list[str] = []
        async with self._write() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at integer NOT NULL)"
            )
            async with db.execute("SELECT version FROM schema_migrations") as cursor:
                done = {r[0] for r in await cursor.fetchall()}
            for migration in migrations.load("sqlite"):
                if migration.version in done:
                    continue
                for statement in _statements(migration.sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, now_us()),
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    # prisons, staff, inmates

    async def add_prison(self, code: str, name: str, city: str = "") -> Prison:
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO prisons (code, name, city) VALUES (?, ?, ?)", (code, name, city)
            )
        assert cursor.lastrowid is not None
        return Prison(cursor.lastrowid, code, name, city)

    async def prison_by_code(self, code: str) -> Prison:
        row = await self._row("SELECT id, code, name, city FROM prisons WHERE code = ?", [code])
        if row is None:
            raise NotFound(f"prison {code}")
        return Prison(row["id"], row["code"], row["name"], row["city"])

    async def add_user(
        self,
        role: Role,
        login: str,
        name: str,
        password_hash: str,
        prison_ids: Sequence[int] = (),
        phone: str | None = None,
    ) -> User:
        prisons = tuple(sorted(set(prison_ids)))
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO users (role, login, name, password_hash, phone)"
                " VALUES (?, ?, ?, ?, ?)",
                (role, login, name, password_hash, phone),
            )
            user_id = cursor.lastrowid
            assert user_id is not None
            await db.executemany(
                "INSERT INTO user_prisons (user_id, prison_id) VALUES (?, ?)",
                [(user_id, p) for p in prisons],
            )
        return User(user_id, role, login, name, prisons, phone)

    async def user(self, user_id: int) -> User:
        row = await self._row(_USER + " WHERE u.id = ?", [user_id])
        if row is None:
            raise NotFound(f"user {user_id}")
        return _user(row)

    async def credentials(self, login: str) -> tuple[User, str]:
        row = await self._row(_USER + " WHERE u.login = ? AND NOT u.disabled", [login])
        if row is None:
            raise NotFound("login")
        return _user(row), row["password_hash"]

    async def add_inmate(self, prison_id: int, number: str, name: str) -> Inmate:
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO inmates (prison_id, number, name) VALUES (?, ?, ?)",
                (prison_id, number, name),
            )
        assert cursor.lastrowid is not None
        return Inmate(cursor.lastrowid, prison_id, number, name)

    async def inmate(self, inmate_id: int) -> Inmate:
        row = await self._row(
            "SELECT id, prison_id, number, name FROM inmates WHERE id = ?", [inmate_id]
        )
        if row is None:
            raise NotFound(f"inmate {inmate_id}")
        return Inmate(row["id"], row["prison_id"], row["number"], row["name"])

    # family links

    async def request_link(
        self, relative_id: int, inmate_id: int, relationship: str, evidence: str
    ) -> int:
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO family_links (relative_id, prison_id, prison_claim, inmate_number,"
                " inmate_id, relationship, evidence)"
                " SELECT ?, prison_id, CAST(prison_id AS text), number, id, ?, ?"
                " FROM inmates WHERE id = ?",
                (relative_id, relationship, evidence, inmate_id),
            )
        if cursor.rowcount == 0 or cursor.lastrowid is None:
            raise NotFound(f"inmate {inmate_id}")
        return cursor.lastrowid

    async def decide_link(
        self, link_id: int, state: LinkState, decided_by: int, reason: str | None
    ) -> None:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE family_links SET state = ?, decided_by = ?, reason = ?, decided_at = ?"
                " WHERE id = ?",
                (state, decided_by, reason, now_us(), link_id),
            )
        if cursor.rowcount == 0:
            raise NotFound(f"link {link_id}")

    async def verified_inmates(self, relative_id: int) -> frozenset[int]:
        rows = await self._rows(
            "SELECT inmate_id FROM family_links WHERE relative_id = ? AND state = 'verified'",
            [relative_id],
        )
        return frozenset(r["inmate_id"] for r in rows)

    # sessions

    async def create_session(self, user_id: int, token_hash: bytes, expires_at: datetime) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES (?, ?, ?)",
                (user_id, token_hash, to_us(expires_at)),
            )

    async def session_user(self, token_hash: bytes, now: datetime) -> User | None:
        row = await self._row(
            _USER + " JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = ?"
            " AND s.revoked_at IS NULL AND s.expires_at > ? AND NOT u.disabled",
            [token_hash, to_us(now)],
        )
        return None if row is None else _user(row)

    async def revoke_session(self, token_hash: bytes) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                (now_us(), token_hash),
            )

    # conversations and messages

    async def open_conversation(self, relative_id: int, inmate_id: int) -> Conversation:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO conversations (prison_id, inmate_id, relative_id)"
                " SELECT prison_id, id, ? FROM inmates WHERE id = ?"
                " ON CONFLICT (relative_id, inmate_id) DO NOTHING",
                (relative_id, inmate_id),
            )
            async with db.execute(
                "SELECT * FROM conversations WHERE relative_id = ? AND inmate_id = ?",
                (relative_id, inmate_id),
            ) as cursor:
                row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"inmate {inmate_id}")
        return _conversation(row)

    async def conversation(self, conversation_id: int) -> Conversation:
        row = await self._row("SELECT * FROM conversations WHERE id = ?", [conversation_id])
        if row is None:
            raise NotFound(f"conversation {conversation_id}")
        return _conversation(row)

    async def conversations_of(self, relative_id: int) -> list[Conversation]:
        rows = await self._rows(
            "SELECT * FROM conversations WHERE relative_id = ? ORDER BY id", [relative_id]
        )
        return [_conversation(r) for r in rows]

    async def append_messages(self, items: Sequence[NewMessage]) -> list[Appended | None]:
        if not items:
            return []
        conv_ids = sorted({i.conversation_id for i in items})
        async with self._write() as db:  # BEGIN IMMEDIATE: the whole database is our lock
            async with db.execute(
                "SELECT id, last_seq, state, cycle FROM conversations"
                f" WHERE id IN ({_marks(len(conv_ids))})",
                conv_ids,
            ) as cursor:
                found = list(await cursor.fetchall())
            last = {r["id"]: r["last_seq"] for r in found}
            before = {r["id"]: (r["state"], r["cycle"]) for r in found}  # for life_cycle
            stored: dict[appending.Key, Message] = {}
            for key in {appending.key_of(i) for i in items if i.conversation_id in last}:
                async with db.execute(
                    records.MESSAGE_SELECT
                    + " WHERE m.conversation_id = ? AND m.sender_id = ? AND m.cid = ?",
                    key,
                ) as cursor:
                    row = await cursor.fetchone()
                if row is not None:
                    stored[key] = _message(row)
            batch = appending.plan(items, last, stored)
            inserted: dict[tuple[int, int], tuple[int, datetime]] = {}
            for _, item, seq in batch.fresh:
                created_at = now_us()
                cursor = await db.execute(
                    "INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind,"
                    " body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item.conversation_id,
                        seq,
                        item.sender_id,
                        item.sender_role,
                        item.cid,
                        item.kind,
                        item.body,
                        created_at,
                    ),
                )
                assert cursor.lastrowid is not None
                inserted[(item.conversation_id, seq)] = (cursor.lastrowid, from_us(created_at))
            await db.executemany(
                "UPDATE conversations SET last_seq = ?, updated_at = ? WHERE id = ?",
                [(seq, now_us(), conv) for conv, seq in batch.last_seqs.items()],
            )
        return appending.life_cycle(batch.finish(inserted), before)

    async def messages(
        self,
        conversation_id: int,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
        include_notes: bool = True,
    ) -> list[Message]:
        bounds, newest_first = page_bounds(after, before)
        sql = (
            records.MESSAGE_SELECT
            + " WHERE m.conversation_id = ?"
            + "".join(f" AND {op} ?" for op, _ in bounds)
            + ("" if include_notes else " AND m.kind <> 'note'")
            + f" ORDER BY m.seq {'DESC' if newest_first else 'ASC'} LIMIT ?"
        )
        rows = await self._rows(sql, [conversation_id, *(v for _, v in bounds), clamp_limit(limit)])
        page = [_message(r) for r in rows]
        return page[::-1] if newest_first else page

    async def last_seqs(self, conversation_ids: Sequence[int]) -> dict[int, int]:
        ids = list(conversation_ids)
        if not ids:
            return {}
        rows = await self._rows(
            f"SELECT id, last_seq FROM conversations WHERE id IN ({_marks(len(ids))})", ids
        )
        return {r["id"]: r["last_seq"] for r in rows}

    async def mark_read(self, conversation_id: int, user_id: int, seq: int) -> bool:
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO read_cursors (conversation_id, user_id, seq, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id, user_id) DO UPDATE"
                " SET seq = excluded.seq, updated_at = excluded.updated_at"
                " WHERE read_cursors.seq < excluded.seq",
                (conversation_id, user_id, seq, now_us()),
            )
        return cursor.rowcount > 0

    async def read_cursors(self, conversation_id: int) -> dict[int, int]:
        rows = await self._rows(
            "SELECT user_id, seq FROM read_cursors WHERE conversation_id = ?", [conversation_id]
        )
        return {r["user_id"]: r["seq"] for r in rows}

    # audit

    async def audit(
        self,
        actor_id: int | None,
        action: str,
        object_type: str,
        object_id: int | None,
        prison_id: int | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> AuditEntry:
        async with (
            self._write() as db,
            db.execute(
                "INSERT INTO audit_entries (at, actor_id, action, object_type, object_id,"
                " prison_id, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    now_us(),
                    actor_id,
                    action,
                    object_type,
                    object_id,
                    prison_id,
                    _json(before),
                    _json(after),
                ),
            ) as cursor,
        ):
            row = await cursor.fetchone()
        assert row is not None
        return _audit(row)

    async def audit_entries(
        self,
        *,
        prison_id: int | None = None,
        actor_id: int | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        rows = await self._rows(
            "SELECT * FROM audit_entries WHERE (?1 IS NULL OR prison_id = ?1)"
            " AND (?2 IS NULL OR actor_id = ?2) AND (?3 IS NULL OR action = ?3)"
            " ORDER BY id DESC LIMIT ?4",
            [prison_id, actor_id, action, clamp_limit(limit)],
        )
        return [_audit(r) for r in rows]

    # accounts and family verification

    async def add_relative(
        self,
        phone: str,
        name: str,
        password_hash: str,
        id_number_hash: bytes,
        id_number_last4: str,
    ) -> User:
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO users (role, login, name, password_hash, phone, id_number_hash,"
                " id_number_last4) VALUES ('relative', ?, ?, ?, ?, ?, ?)",
                (phone, name, password_hash, phone, id_number_hash, id_number_last4),
            )
        assert cursor.lastrowid is not None
        return User(cursor.lastrowid, "relative", phone, name, (), phone)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            )

    async def id_number_last4(self, user_id: int) -> str | None:
        row = await self._row("SELECT id_number_last4 FROM users WHERE id = ?", [user_id])
        return None if row is None else row["id_number_last4"]

    async def users(self, *, role: Role | None = None, limit: int = 100) -> list[User]:
        rows = await self._rows(
            _USER + " WHERE (?1 IS NULL OR u.role = ?1) ORDER BY u.id LIMIT ?2",
            [role, clamp_limit(limit)],
        )
        return [_user(r) for r in rows]

    async def revoke_user_sessions(self, user_id: int) -> int:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                (now_us(), user_id),
            )
        return cursor.rowcount

    async def prison(self, prison_id: int) -> Prison:
        row = await self._row("SELECT id, code, name, city FROM prisons WHERE id = ?", [prison_id])
        if row is None:
            raise NotFound(f"prison {prison_id}")
        return Prison(row["id"], row["code"], row["name"], row["city"])

    async def prisons(self) -> list[Prison]:
        rows = await self._rows("SELECT id, code, name, city FROM prisons ORDER BY id")
        return [Prison(r["id"], r["code"], r["name"], r["city"]) for r in rows]

    async def inmate_by_number(self, prison_id: int, number: str) -> Inmate | None:
        row = await self._row(
            "SELECT id, prison_id, number, name FROM inmates WHERE prison_id = ? AND number = ?",
            [prison_id, number],
        )
        return (
            None if row is None else Inmate(row["id"], row["prison_id"], row["number"], row["name"])
        )

    async def claim_link(self, claim: LinkClaim) -> FamilyLink:
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO family_links (relative_id, prison_id, prison_claim, inmate_number,"
                " inmate_id, relationship, evidence, claim_key, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    claim.relative_id,
                    claim.prison_id,
                    claim.prison_claim,
                    claim.inmate_number,
                    claim.inmate_id,
                    claim.relationship,
                    claim.evidence,
                    claim.claim_key,
                    now_us(),
                ),
            )
        assert cursor.lastrowid is not None
        return await self.link(cursor.lastrowid)

    async def link(self, link_id: int) -> FamilyLink:
        row = await self._row(records.LINK_SELECT + " WHERE l.id = ?", [link_id])
        if row is None:
            raise NotFound(f"link {link_id}")
        return _link(row)

    async def links(
        self,
        *,
        relative_id: int | None = None,
        prison_ids: Sequence[int] | None = None,
        state: LinkState | None = None,
        limit: int = 100,
    ) -> list[FamilyLink]:
        where = ["(?1 IS NULL OR l.relative_id = ?1)", "(?2 IS NULL OR l.state = ?2)"]
        args: list[Any] = [relative_id, state, clamp_limit(limit)]
        if prison_ids is not None:
            ids = [int(p) for p in prison_ids]
            where.append(f"l.prison_id IN ({','.join(str(p) for p in ids) or 'NULL'})")
        rows = await self._rows(
            records.LINK_SELECT + " WHERE " + " AND ".join(where) + " ORDER BY l.id LIMIT ?3", args
        )
        return [_link(r) for r in rows]

    async def transition_link(
        self,
        link_id: int,
        from_state: LinkState,
        to_state: LinkState,
        decided_by: int,
        reason: str | None,
    ) -> FamilyLink:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE family_links SET state = ?, decided_by = ?, reason = ?, decided_at = ?"
                " WHERE id = ? AND state = ?",
                (to_state, decided_by, reason, now_us(), link_id, from_state),
            )
            if cursor.rowcount:
                await db.execute(
                    "INSERT INTO audit_entries (at, actor_id, action, object_type, object_id,"
                    " prison_id, before, after) SELECT ?, ?, ?, 'family_link', id, prison_id, ?, ?"
                    " FROM family_links WHERE id = ?",
                    (
                        now_us(),
                        decided_by,
                        f"link.{to_state}",
                        _json({"state": from_state}),
                        _json({"state": to_state, "reason": reason}),
                        link_id,
                    ),
                )
        link = await self.link(link_id)
        if cursor.rowcount == 0:
            raise Conflict("state")
        return link


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_us(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _json(value)
    return value


class _SqliteSql:
    """``storage.sql.Sql`` on one aiosqlite connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            async with self._db.execute(to_sqlite(sql), [_param(a) for a in args]) as cursor:
                return list(await cursor.fetchall())
        except (sqlite3.OperationalError, ValueError) as exc:
            raise StoreUnavailable(f"SQLite unavailable: {exc}") from exc

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            cursor = await self._db.execute(to_sqlite(sql), [_param(a) for a in args])
        except (sqlite3.OperationalError, ValueError) as exc:
            raise StoreUnavailable(f"SQLite unavailable: {exc}") from exc
        count: int = cursor.rowcount
        await cursor.close()
        return max(count, 0)

    def when(self, value: Any) -> datetime:
        return from_us(int(value))

    def day(self, value: Any) -> date:
        return date.fromisoformat(str(value))

    def unjson(self, value: Any) -> Any:
        return _unjson(value)


class SqliteDatabase:
    """``storage.sql.Database``: writes on the single writer (``BEGIN IMMEDIATE``), reads on
    the reader connection."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    @asynccontextmanager
    async def read(self) -> AsyncIterator[_SqliteSql]:
        yield _SqliteSql(self._store._reader)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_SqliteSql]:
        async with self._store._write() as db:
            yield _SqliteSql(db)
