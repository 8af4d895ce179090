"""Attachments' rows: what each uploaded file is, whose, and what it belongs to (migration 0018).

The bytes are in the object store (``storage/objects.py``); a row names them by key. A file
is uploaded first (``add``: no message, no link), then bound:

- to a message, by the message's key ``(conversation, sender, cid)`` *before* the append
  (``bind_to_message``), so the append is unchanged and a retried send (same cid) binds the
  same files again; the trigger of migration 0018 records the message's id in the append's own
  transaction. Binding a file already bound to another message key, or to a link, or someone
  else's, is refused (``NotFound``: the same answer as for an id that does not exist);
- to a link request as evidence (``bind_to_link``, inside the request's own transaction).

A file bound to neither within the sweep's age (``discard_unsent``) is removed; so are the
files of messages whose text retention purges (``discard_of_messages_before``). Removing a
row moves its object keys to ``attachment_trash`` in the same transaction; the sweep deletes
the objects, then the trash rows (``trash``, ``forget_trash``), so a crash in between leaves
work to redo, never a file no row names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.records import Attachment
from storage.errors import NotFound
from storage.sql import Database, Row, Sql, ids_in

_COLUMNS = (
    "id, owner_id, content_type, name, size, sha256, object_key, created_at, width, height,"
    " thumb_key, conversation_id, cid, message_id, link_id"
)


def _attachment(sql: Sql, row: Row) -> Attachment:
    return Attachment(
        id=row["id"],
        owner_id=row["owner_id"],
        content_type=row["content_type"],
        name=row["name"],
        size=row["size"],
        sha256=row["sha256"],
        object_key=row["object_key"],
        created_at=sql.when(row["created_at"]),
        width=row["width"],
        height=row["height"],
        thumb_key=row["thumb_key"],
        conversation_id=row["conversation_id"],
        cid=row["cid"],
        message_id=row["message_id"],
        link_id=row["link_id"],
    )


async def add(
    db: Database,
    *,
    owner_id: int,
    content_type: str,
    name: str,
    size: int,
    sha256: str,
    object_key: str,
    thumb_key: str | None,
    width: int | None,
    height: int | None,
    now: datetime,
) -> Attachment:
    """Record an uploaded file (its objects already stored), bound to nothing yet."""
    async with db.write() as sql:
        row = await sql.fetchrow(
            "INSERT INTO attachments (owner_id, content_type, name, size, sha256, object_key,"
            " thumb_key, width, height, created_at)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS}",
            owner_id,
            content_type,
            name,
            size,
            sha256,
            object_key,
            thumb_key,
            width,
            height,
            now,
        )
        assert row is not None
        return _attachment(sql, row)


async def attachment(db: Database, attachment_id: int) -> Attachment:
    """One attachment; ``NotFound``."""
    async with db.read() as sql:
        row = await sql.fetchrow(f"SELECT {_COLUMNS} FROM attachments WHERE id = $1", attachment_id)
        if row is None:
            raise NotFound(f"attachment {attachment_id}")
        return _attachment(sql, row)


async def usage(db: Database, owner_id: int) -> int:
    """Bytes of every file ``owner_id`` has stored (sent or not): what its quota counts."""
    async with db.read() as sql:
        used = await sql.fetchval(
            "SELECT COALESCE(SUM(size), 0) FROM attachments WHERE owner_id = $1", owner_id
        )
    return int(used)


async def bind_to_message(
    db: Database, ids: Sequence[int], *, owner_id: int, conversation_id: int, cid: str
) -> tuple[Attachment, ...]:
    """Bind the owner's files to the message key ``(conversation, owner, cid)``, returned in
    upload (id) order; ``NotFound`` (nothing bound) unless every one is the owner's, no link's
    evidence, and not yet stored with another message (a file bound to a key whose message
    never came may be sent again with another; a retried send binds the same key again)."""
    wanted = list(dict.fromkeys(ids))
    async with db.write() as sql:
        moved = await sql.execute(
            "UPDATE attachments SET conversation_id = $2, cid = $3"
            f" WHERE id IN {ids_in(wanted)} AND owner_id = $1 AND link_id IS NULL"
            " AND (message_id IS NULL OR (conversation_id = $2 AND cid = $3))",
            owner_id,
            conversation_id,
            cid,
        )
        if moved != len(wanted):
            raise NotFound("attachment")
        rows = await sql.fetch(f"SELECT {_COLUMNS} FROM attachments WHERE id IN {ids_in(wanted)}")
        found = sorted((_attachment(sql, r) for r in rows), key=lambda a: a.id)
    return tuple(found)  # upload order, as history reads them (and the hash chain takes them)


async def bind_to_link(sql: Sql, ids: Sequence[int], *, owner_id: int, link_id: int) -> None:
    """Inside the link request's transaction: the owner's free files become its evidence;
    ``NotFound`` unless every one is the owner's and free (the caller's transaction then
    rolls back, request included)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return
    moved = await sql.execute(
        "UPDATE attachments SET link_id = $2"
        f" WHERE id IN {ids_in(wanted)} AND owner_id = $1 AND link_id IS NULL"
        " AND conversation_id IS NULL AND message_id IS NULL",
        owner_id,
        link_id,
    )
    if moved != len(wanted):
        raise NotFound("attachment")


async def of_messages(sql: Sql, message_ids: Sequence[int]) -> dict[int, tuple[Attachment, ...]]:
    """The attachments of each of these messages (those with any), in upload order."""
    if not message_ids:
        return {}
    rows = await sql.fetch(
        f"SELECT {_COLUMNS} FROM attachments WHERE message_id IN {ids_in(message_ids)} ORDER BY id"
    )
    found: dict[int, list[Attachment]] = {}
    for row in rows:
        found.setdefault(row["message_id"], []).append(_attachment(sql, row))
    return {k: tuple(v) for k, v in found.items()}


async def of_links(db: Database, link_ids: Sequence[int]) -> dict[int, tuple[Attachment, ...]]:
    """The evidence files of each of these link requests (those with any)."""
    if not link_ids:
        return {}
    async with db.read() as sql:
        rows = await sql.fetch(
            f"SELECT {_COLUMNS} FROM attachments WHERE link_id IN {ids_in(link_ids)} ORDER BY id"
        )
        found: dict[int, list[Attachment]] = {}
        for row in rows:
            found.setdefault(row["link_id"], []).append(_attachment(sql, row))
    return {k: tuple(v) for k, v in found.items()}


async def _discard(sql: Sql, where: str, *args: object, now: datetime) -> int:
    """Delete the rows matching ``where``, their object keys moved to the trash."""
    for column in ("object_key", "thumb_key"):
        await sql.execute(
            "INSERT INTO attachment_trash (object_key, discarded_at)"
            f" SELECT {column}, ${len(args) + 1}"
            f" FROM attachments WHERE {where} AND {column} IS NOT NULL"
            " ON CONFLICT (object_key) DO NOTHING",
            *args,
            now,
        )
    return await sql.execute(f"DELETE FROM attachments WHERE {where}", *args)


async def discard_unsent(db: Database, before: datetime, now: datetime) -> int:
    """Remove the uploads bound to no message and no link that were made before ``before``
    (a send that never came: a file bound to a message key whose message was never stored
    counts as unsent too); how many."""
    async with db.write() as sql:
        return await _discard(
            sql,
            "message_id IS NULL AND link_id IS NULL AND created_at < $1",
            before,
            now=now,
        )


async def discard_of_messages_before(sql: Sql, before: datetime, now: datetime) -> int:
    """Inside retention's purge transaction: remove the files of the messages it purges."""
    return await _discard(
        sql,
        "message_id IN (SELECT id FROM messages WHERE created_at < $1 AND purged_at IS NULL)",
        before,
        now=now,
    )


async def trash(db: Database, limit: int = 500) -> list[str]:
    """Object keys whose rows are gone: to delete from the object store."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT object_key FROM attachment_trash ORDER BY discarded_at LIMIT $1", limit
        )
    return [r["object_key"] for r in rows]


async def forget_trash(db: Database, keys: Sequence[str]) -> None:
    """The object store deleted these keys."""
    if not keys:
        return
    async with db.write() as sql:
        for key in keys:
            await sql.execute("DELETE FROM attachment_trash WHERE object_key = $1", key)


async def message_place(db: Database, message_id: int) -> tuple[int, str, int] | None:
    """The conversation, kind and seq of the message a file was sent with (for the policy)."""
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT conversation_id, kind, seq FROM messages WHERE id = $1", message_id
        )
    return None if row is None else (row["conversation_id"], row["kind"], row["seq"])


async def stored_message_id(
    db: Database, conversation_id: int, sender_id: int, cid: str
) -> int | None:
    """The message stored under this key, if any (a WeChat image retried by the platform is
    not fetched again)."""
    async with db.read() as sql:
        found: int | None = await sql.fetchval(
            "SELECT id FROM messages WHERE conversation_id = $1 AND sender_id = $2 AND cid = $3",
            conversation_id,
            sender_id,
            cid,
        )
    return found
