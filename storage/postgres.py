"""``PostgresStore``: the production store, shared by every server process (asyncpg pool).

asyncpg prepares and caches each statement per pooled connection, so the hot statements
(append, history, cursors) are parsed once per connection. Every driver or network failure is
turned into ``StoreUnavailable`` at one place, ``_guard``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any, Literal

import asyncpg
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

_MIGRATION_LOCK = 0x6B696E6C  # "kinl": one migrator at a time across processes

_USER = """
SELECT u.id, u.role, u.login, u.name, u.phone, u.password_hash,
       COALESCE(ARRAY(SELECT prison_id FROM user_prisons p WHERE p.user_id = u.id
                      ORDER BY prison_id), '{}') AS prison_ids
FROM users u
"""


def _user(row: asyncpg.Record) -> User:
    return User(
        row["id"], row["role"], row["login"], row["name"], tuple(row["prison_ids"]), row["phone"]
    )


def _message(row: asyncpg.Record) -> Message:
    return records.message(row, records.same)


def _conversation(row: asyncpg.Record) -> Conversation:
    return records.conversation(row, records.same)


def _audit(row: asyncpg.Record) -> AuditEntry:
    return records.audit(row, records.same)


def _link(row: asyncpg.Record) -> FamilyLink:
    return records.link(row, records.same)


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


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.db = PgDatabase(self)  # portable SQL for the later areas (storage/sql.py)

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 2, max_size: int = 10, timeout: float = 5.0
    ) -> PostgresStore:
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                command_timeout=timeout,
                init=_init_connection,
                reset=_keep_session,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; any connection-level failure becomes ``StoreUnavailable``."""
        try:
            async with self._pool.acquire(timeout=5.0) as conn:
                yield conn
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(exc.constraint_name or "unique") from exc
        except (
            TimeoutError,
            OSError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError,
            asyncpg.exceptions.AdminShutdownError,
        ) as exc:
            raise StoreUnavailable(f"PostgreSQL unavailable: {type(exc).__name__}") from exc

    async def ping(self) -> None:
        async with self._conn() as conn:
            await conn.fetchval("SELECT 1")

    async def migrate(self) -> list[str]:
        applied: list[str] = []
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in migrations.load("postgres"):
                if migration.version in done:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    # prisons, staff, inmates

    async def add_prison(self, code: str, name: str, city: str = "") -> Prison:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "INSERT INTO prisons (code, name, city) VALUES ($1, $2, $3)"
                " RETURNING id, code, name, city",
                code,
                name,
                city,
            )
        return Prison(row["id"], row["code"], row["name"], row["city"])

    async def prison_by_code(self, code: str) -> Prison:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT id, code, name, city FROM prisons WHERE code = $1", code
            )
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
        async with self._conn() as conn, conn.transaction():
            user_id = await conn.fetchval(
                "INSERT INTO users (role, login, name, password_hash, phone)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                role,
                login,
                name,
                password_hash,
                phone,
            )
            await conn.executemany(
                "INSERT INTO user_prisons (user_id, prison_id) VALUES ($1, $2)",
                [(user_id, p) for p in sorted(set(prison_ids))],
            )
        return User(user_id, role, login, name, tuple(sorted(set(prison_ids))), phone)

    async def user(self, user_id: int) -> User:
        async with self._conn() as conn:
            row = await conn.fetchrow(_USER + " WHERE u.id = $1", user_id)
        if row is None:
            raise NotFound(f"user {user_id}")
        return _user(row)

    async def credentials(self, login: str) -> tuple[User, str]:
        async with self._conn() as conn:
            row = await conn.fetchrow(_USER + " WHERE u.login = $1 AND NOT u.disabled", login)
        if row is None:
            raise NotFound("login")
        return _user(row), row["password_hash"]

    async def add_inmate(self, prison_id: int, number: str, name: str) -> Inmate:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "INSERT INTO inmates (prison_id, number, name) VALUES ($1, $2, $3) RETURNING id",
                prison_id,
                number,
                name,
            )
        return Inmate(row["id"], prison_id, number, name)

    async def inmate(self, inmate_id: int) -> Inmate:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT id, prison_id, number, name FROM inmates WHERE id = $1", inmate_id
            )
        if row is None:
            raise NotFound(f"inmate {inmate_id}")
        return Inmate(row["id"], row["prison_id"], row["number"], row["name"])

    # family links

    async def request_link(
        self, relative_id: int, inmate_id: int, relationship: str, evidence: str
    ) -> int:
        async with self._conn() as conn:
            link_id: int | None = await conn.fetchval(
                "INSERT INTO family_links (relative_id, prison_id, prison_claim, inmate_number,"
                " inmate_id, relationship, evidence)"
                " SELECT $1, prison_id, prison_id::text, number, id, $3, $4"
                " FROM inmates WHERE id = $2 RETURNING id",
                relative_id,
                inmate_id,
                relationship,
                evidence,
            )
        if link_id is None:
            raise NotFound(f"inmate {inmate_id}")
        return link_id

    async def decide_link(
        self, link_id: int, state: LinkState, decided_by: int, reason: str | None
    ) -> None:
        async with self._conn() as conn:
            done = await conn.execute(
                "UPDATE family_links SET state = $2, decided_by = $3, reason = $4,"
                " decided_at = now() WHERE id = $1",
                link_id,
                state,
                decided_by,
                reason,
            )
        if done == "UPDATE 0":
            raise NotFound(f"link {link_id}")

    async def verified_inmates(self, relative_id: int) -> frozenset[int]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT inmate_id FROM family_links WHERE relative_id = $1 AND state = 'verified'",
                relative_id,
            )
        return frozenset(r["inmate_id"] for r in rows)

    # sessions

    async def create_session(self, user_id: int, token_hash: bytes, expires_at: datetime) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, $3)",
                user_id,
                token_hash,
                expires_at,
            )

    async def session_user(self, token_hash: bytes, now: datetime) -> User | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                _USER + " JOIN sessions s ON s.user_id = u.id WHERE s.token_hash = $1"
                " AND s.revoked_at IS NULL AND s.expires_at > $2 AND NOT u.disabled",
                token_hash,
                now,
            )
        return None if row is None else _user(row)

    async def revoke_session(self, token_hash: bytes) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1"
                " AND revoked_at IS NULL",
                token_hash,
            )

    # conversations and messages

    async def open_conversation(self, relative_id: int, inmate_id: int) -> Conversation:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "INSERT INTO conversations (prison_id, inmate_id, relative_id)"
                " SELECT prison_id, id, $1 FROM inmates WHERE id = $2"
                " ON CONFLICT (relative_id, inmate_id) DO UPDATE SET updated_at = now()"
                " RETURNING *",
                relative_id,
                inmate_id,
            )
        if row is None:
            raise NotFound(f"inmate {inmate_id}")
        return _conversation(row)

    async def conversation(self, conversation_id: int) -> Conversation:
        async with self._conn() as conn:
            row = await conn.fetchrow("SELECT * FROM conversations WHERE id = $1", conversation_id)
        if row is None:
            raise NotFound(f"conversation {conversation_id}")
        return _conversation(row)

    async def conversations_of(self, relative_id: int) -> list[Conversation]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT * FROM conversations WHERE relative_id = $1 ORDER BY id", relative_id
            )
        return [_conversation(r) for r in rows]

    async def append_messages(self, items: Sequence[NewMessage]) -> list[Appended | None]:
        """One statement, one round trip: ``kinline_append`` (migrations 0001, 0003) locks the
        conversations, dedupes by cid and numbers the new messages atomically; the life-cycle
        triggers run in the same statement, and the states before it come back with the rows."""
        if not items:
            return []
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT * FROM kinline_append($1, $2, $3, $4, $5, $6)",
                [i.conversation_id for i in items],
                [i.sender_id for i in items],
                [i.sender_role for i in items],
                [i.cid for i in items],
                [i.kind for i in items],
                [i.body for i in items],
            )
        found = {
            r["ord"] - 1: appending.Stored(r["id"], r["seq"], r["created_at"], r["created"])
            for r in rows
        }
        before = {
            r["conversation_id"]: (r["prev_state"], r["prev_cycle"]) for r in rows if r["created"]
        }
        return appending.life_cycle(appending.assemble(items, found), before)

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
        args: list[object] = [conversation_id, *(value for _, value in bounds), clamp_limit(limit)]
        sql = (
            records.MESSAGE_SELECT
            + " WHERE m.conversation_id = $1"
            + "".join(f" AND {op} ${n}" for n, (op, _) in enumerate(bounds, start=2))
            + ("" if include_notes else " AND m.kind <> 'note'")
            + f" ORDER BY m.seq {'DESC' if newest_first else 'ASC'} LIMIT ${len(args)}"
        )
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        page = [_message(r) for r in rows]
        return page[::-1] if newest_first else page

    async def last_seqs(self, conversation_ids: Sequence[int]) -> dict[int, int]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT id, last_seq FROM conversations WHERE id = ANY($1)", list(conversation_ids)
            )
        return {r["id"]: r["last_seq"] for r in rows}

    async def mark_read(self, conversation_id: int, user_id: int, seq: int) -> bool:
        async with self._conn() as conn:
            moved = await conn.fetchval(
                "INSERT INTO read_cursors (conversation_id, user_id, seq) VALUES ($1, $2, $3)"
                " ON CONFLICT (conversation_id, user_id) DO UPDATE SET seq = EXCLUDED.seq,"
                " updated_at = now() WHERE read_cursors.seq < EXCLUDED.seq RETURNING true",
                conversation_id,
                user_id,
                seq,
            )
        return bool(moved)

    async def read_cursors(self, conversation_id: int) -> dict[int, int]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT user_id, seq FROM read_cursors WHERE conversation_id = $1", conversation_id
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
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "INSERT INTO audit_entries (actor_id, action, object_type, object_id, prison_id,"
                " before, after) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                actor_id,
                action,
                object_type,
                object_id,
                prison_id,
                before,
                after,
            )
        return _audit(row)

    async def audit_entries(
        self,
        *,
        prison_id: int | None = None,
        actor_id: int | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT * FROM audit_entries WHERE ($1::bigint IS NULL OR prison_id = $1)"
                " AND ($2::bigint IS NULL OR actor_id = $2) AND ($3::text IS NULL OR action = $3)"
                " ORDER BY id DESC LIMIT $4",
                prison_id,
                actor_id,
                action,
                clamp_limit(limit),
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
        async with self._conn() as conn:
            user_id: int = await conn.fetchval(
                "INSERT INTO users (role, login, name, password_hash, phone, id_number_hash,"
                " id_number_last4) VALUES ('relative', $1, $2, $3, $1, $4, $5) RETURNING id",
                phone,
                name,
                password_hash,
                id_number_hash,
                id_number_last4,
            )
        return User(user_id, "relative", phone, name, (), phone)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash
            )

    async def id_number_last4(self, user_id: int) -> str | None:
        async with self._conn() as conn:
            last4: str | None = await conn.fetchval(
                "SELECT id_number_last4 FROM users WHERE id = $1", user_id
            )
        return last4

    async def users(self, *, role: Role | None = None, limit: int = 100) -> list[User]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                _USER + " WHERE ($1::text IS NULL OR u.role = $1) ORDER BY u.id LIMIT $2",
                role,
                clamp_limit(limit),
            )
        return [_user(r) for r in rows]

    async def revoke_user_sessions(self, user_id: int) -> int:
        async with self._conn() as conn:
            done: str = await conn.execute(
                "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
                user_id,
            )
        return int(done.rpartition(" ")[2])

    async def prison(self, prison_id: int) -> Prison:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT id, code, name, city FROM prisons WHERE id = $1", prison_id
            )
        if row is None:
            raise NotFound(f"prison {prison_id}")
        return Prison(row["id"], row["code"], row["name"], row["city"])

    async def prisons(self) -> list[Prison]:
        async with self._conn() as conn:
            rows = await conn.fetch("SELECT id, code, name, city FROM prisons ORDER BY id")
        return [Prison(r["id"], r["code"], r["name"], r["city"]) for r in rows]

    async def inmate_by_number(self, prison_id: int, number: str) -> Inmate | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT id, prison_id, number, name FROM inmates WHERE prison_id = $1"
                " AND number = $2",
                prison_id,
                number,
            )
        return (
            None if row is None else Inmate(row["id"], row["prison_id"], row["number"], row["name"])
        )

    async def claim_link(self, claim: LinkClaim) -> FamilyLink:
        async with self._conn() as conn:
            link_id: int = await conn.fetchval(
                "INSERT INTO family_links (relative_id, prison_id, prison_claim, inmate_number,"
                " inmate_id, relationship, evidence, claim_key)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                claim.relative_id,
                claim.prison_id,
                claim.prison_claim,
                claim.inmate_number,
                claim.inmate_id,
                claim.relationship,
                claim.evidence,
                claim.claim_key,
            )
        return await self.link(link_id)

    async def link(self, link_id: int) -> FamilyLink:
        async with self._conn() as conn:
            row = await conn.fetchrow(records.LINK_SELECT + " WHERE l.id = $1", link_id)
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
        async with self._conn() as conn:
            rows = await conn.fetch(
                records.LINK_SELECT + " WHERE ($1::bigint IS NULL OR l.relative_id = $1)"
                " AND ($2::bigint[] IS NULL OR l.prison_id = ANY($2))"
                " AND ($3::text IS NULL OR l.state = $3) ORDER BY l.id LIMIT $4",
                relative_id,
                None if prison_ids is None else list(prison_ids),
                state,
                clamp_limit(limit),
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
        async with self._conn() as conn, conn.transaction():
            moved = await conn.fetchrow(
                "UPDATE family_links SET state = $3, decided_by = $4, reason = $5,"
                " decided_at = now() WHERE id = $1 AND state = $2 RETURNING prison_id",
                link_id,
                from_state,
                to_state,
                decided_by,
                reason,
            )
            if moved is not None:
                await conn.execute(
                    "INSERT INTO audit_entries (actor_id, action, object_type, object_id,"
                    " prison_id, before, after) VALUES ($1, $2, 'family_link', $3, $4, $5, $6)",
                    decided_by,
                    f"link.{to_state}",
                    link_id,
                    moved["prison_id"],
                    {"state": from_state},
                    {"state": to_state, "reason": reason},
                )
        link = await self.link(link_id)
        if moved is None:
            raise Conflict("state")
        return link


class _PgSql:
    """``storage.sql.Sql`` on one asyncpg connection (jsonb and timestamptz decode natively)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self._conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
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


class PgDatabase:
    """``storage.sql.Database`` over the store's pool and its error mapping."""

    dialect: Literal["postgres"] = "postgres"

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    @asynccontextmanager
    async def read(self) -> AsyncIterator[_PgSql]:
        async with self._store._conn() as conn:
            yield _PgSql(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_PgSql]:
        async with self._store._conn() as conn, conn.transaction():
            yield _PgSql(conn)
