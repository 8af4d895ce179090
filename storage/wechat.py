"""WeChat Official Account: followers, a relative's binding to its OpenID, the shared token.

- Followers are kept from the account's ``subscribe`` / ``unsubscribe`` events, bound or not
  (the bureau figures count them: ``followers``).
- A binding joins one relative to one OpenID (each side unique). Binding and unbinding are
  audited in their own transaction (``wechat.bound`` / ``wechat.unbound``, the relative as
  actor; the OpenID itself is kept out of the audit trail, only its last four characters).
  A relative verified for several inmates chooses which one its WeChat texts are about
  (``choose``); ``last_inbound_at`` opens the platform's 48-hour customer-service window.
- The access token is one row per app id, shared by every process; ``refresh_token`` lets one
  process at a time fetch a new one (a row lock on PostgreSQL, the single writer on SQLite).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import msgspec

from storage import audit_trail
from storage.errors import Conflict
from storage.sql import Database, Row, Sql, for_update


class Binding(msgspec.Struct, frozen=True):
    relative_id: int
    openid: str
    bound_at: datetime
    inmate_id: int | None
    last_inbound_at: datetime | None


def masked(openid: str) -> str:
    """What the relative and the audit trail see of an OpenID."""
    return "…" + openid[-4:]


async def follow(db: Database, openid: str, following: bool, at: datetime) -> None:
    """A subscribe (``following``) or unsubscribe event."""
    async with db.write() as sql:
        await sql.execute(
            "INSERT INTO wechat_followers (openid, following, first_at, changed_at)"
            " VALUES ($1, $2, $3, $3) ON CONFLICT (openid) DO UPDATE"
            " SET following = excluded.following, changed_at = excluded.changed_at",
            openid,
            following,
            at,
        )


async def followers(db: Database) -> int:
    """How many follow the account now."""
    async with db.read() as sql:
        count: int = await sql.fetchval(
            "SELECT count(*) FROM wechat_followers WHERE following = $1", True
        )
    return count


def _binding(sql: Sql, row: Row) -> Binding:
    inbound = row["last_inbound_at"]
    return Binding(
        relative_id=row["relative_id"],
        openid=row["openid"],
        bound_at=sql.when(row["bound_at"]),
        inmate_id=row["inmate_id"],
        last_inbound_at=None if inbound is None else sql.when(inbound),
    )


_COLUMNS = "relative_id, openid, bound_at, inmate_id, last_inbound_at"


async def binding_of(db: Database, relative_id: int) -> Binding | None:
    async with db.read() as sql:
        row = await sql.fetchrow(
            f"SELECT {_COLUMNS} FROM wechat_bindings WHERE relative_id = $1", relative_id
        )
        return None if row is None else _binding(sql, row)


async def binding_by_openid(db: Database, openid: str) -> Binding | None:
    async with db.read() as sql:
        row = await sql.fetchrow(
            f"SELECT {_COLUMNS} FROM wechat_bindings WHERE openid = $1", openid
        )
        return None if row is None else _binding(sql, row)


async def bind(db: Database, relative_id: int, openid: str, at: datetime) -> Binding:
    """Bind ``openid`` to the relative (replacing its earlier OpenID, if any), audited.
    ``Conflict("openid")`` if another relative holds that OpenID."""
    async with db.write() as sql:
        holder = await sql.fetchval(
            "SELECT relative_id FROM wechat_bindings WHERE openid = $1" + for_update(db), openid
        )
        if holder is not None and holder != relative_id:
            raise Conflict("openid")
        before = await sql.fetchrow(
            "SELECT openid FROM wechat_bindings WHERE relative_id = $1" + for_update(db),
            relative_id,
        )
        if before is not None and before["openid"] == openid:
            row = await sql.fetchrow(
                f"SELECT {_COLUMNS} FROM wechat_bindings WHERE relative_id = $1", relative_id
            )
            assert row is not None
            return _binding(sql, row)
        await sql.execute("DELETE FROM wechat_bindings WHERE relative_id = $1", relative_id)
        row = await sql.fetchrow(
            "INSERT INTO wechat_bindings (relative_id, openid, bound_at) VALUES ($1, $2, $3)"
            f" RETURNING {_COLUMNS}",
            relative_id,
            openid,
            at,
        )
        assert row is not None
        await audit_trail.record(
            sql,
            at=at,
            actor_id=relative_id,
            action="wechat.bound",
            object_type="user",
            object_id=relative_id,
            prison_id=None,
            before={"openid": masked(before["openid"])} if before is not None else None,
            after={"openid": masked(openid)},
        )
        return _binding(sql, row)


async def unbind(db: Database, relative_id: int, at: datetime) -> bool:
    """End the relative's binding, audited; False if it had none."""
    async with db.write() as sql:
        openid = await sql.fetchval(
            "DELETE FROM wechat_bindings WHERE relative_id = $1 RETURNING openid", relative_id
        )
        if openid is None:
            return False
        await audit_trail.record(
            sql,
            at=at,
            actor_id=relative_id,
            action="wechat.unbound",
            object_type="user",
            object_id=relative_id,
            prison_id=None,
            before={"openid": masked(openid)},
            after=None,
        )
        return True


async def choose(db: Database, relative_id: int, inmate_id: int | None) -> None:
    """The inmate the relative's WeChat texts are about (None: ask again)."""
    async with db.write() as sql:
        await sql.execute(
            "UPDATE wechat_bindings SET inmate_id = $2 WHERE relative_id = $1",
            relative_id,
            inmate_id,
        )


async def heard_from(db: Database, relative_id: int, at: datetime) -> None:
    """The relative wrote from WeChat: the 48-hour customer-service window starts again."""
    async with db.write() as sql:
        await sql.execute(
            "UPDATE wechat_bindings SET last_inbound_at = $2 WHERE relative_id = $1",
            relative_id,
            at,
        )


# the access token


async def cached_token(db: Database, appid: str, now: datetime) -> str | None:
    """The shared access token if it is good for at least another minute."""
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT token, expires_at FROM wechat_tokens WHERE appid = $1", appid
        )
        if row is None or sql.when(row["expires_at"]) <= now + timedelta(minutes=1):
            return None
        token: str = row["token"]
        return token


async def refresh_token(
    db: Database,
    appid: str,
    now: datetime,
    fetch: Callable[[], Awaitable[tuple[str, int]]],
    *,
    stale: str | None = None,
) -> str:
    """A new token from ``fetch`` (token, seconds it lasts), stored for every process; one
    refresher at a time: a process that finds, under the lock, a good token other than
    ``stale`` (the one the platform just refused) takes it instead of fetching."""
    async with db.write() as sql:
        if db.dialect == "postgres":  # the row may not exist yet: lock on the app id itself
            await sql.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "wechat:" + appid)
        row = await sql.fetchrow(
            "SELECT token, expires_at FROM wechat_tokens WHERE appid = $1", appid
        )
        if (
            row is not None
            and row["token"] != stale
            and sql.when(row["expires_at"]) > now + timedelta(minutes=1)
        ):
            kept: str = row["token"]
            return kept
        token, lasts = await fetch()
        await sql.execute(
            "INSERT INTO wechat_tokens (appid, token, expires_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (appid) DO UPDATE"
            " SET token = excluded.token, expires_at = excluded.expires_at",
            appid,
            token,
            now + timedelta(seconds=max(lasts - 300, 60)),
        )
        return token
