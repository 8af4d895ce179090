"""The outbox of notifications to relatives, their push devices and their channel choice.

A row is written by the database itself in the transaction of what it tells (migration 0008's
triggers): an officer's answer (``answer``, with the message) and a decision on a relative's
link request, visit request or complaint (``link``, ``visit``, ``complaint``), and only for a
relative that has a way to be told and has not opted out. So a crash can neither lose a
notification whose cause committed, nor invent one whose cause rolled back.

Sending (``server/outbox.py``) takes due rows with ``claim``: one statement that leases them
(``lease_until``) and counts the attempt; on PostgreSQL the rows are picked ``FOR UPDATE SKIP
LOCKED``, so two processes claiming at once never get the same row, and on SQLite the single
writer orders claims. A claim is identified by the attempt number it set: ``finish`` and
``retry`` change the row only while it still holds that attempt, so a sender whose lease ran
out (and whose row another sender took) cannot overwrite the other's outcome. Every attempt
is recorded (``outbox_attempts``) in the transaction that settles it. A sender that dies
mid-send leaves its row leased: it is taken again once the lease is over (so a send that
reached the platform just before the crash may be repeated: exactly once on success, at least
once across crashes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from storage.errors import Conflict
from storage.sql import Database, ids_in

Event = Literal["answer", "link", "visit", "complaint"]
Channel = Literal["auto", "wechat", "push", "sms", "none"]
State = Literal["pending", "sent", "skipped", "failed"]


class Item(msgspec.Struct, frozen=True):
    id: int
    relative_id: int
    event: Event
    conversation_id: int | None
    message_id: int | None
    object_id: int | None
    decision: str | None
    attempt: int  # the claim's attempt number (1 for the first)
    created_at: datetime


class PushDevice(msgspec.Struct, frozen=True):
    id: int
    endpoint: str
    p256dh: str
    auth: str


class Delivery(msgspec.Struct, frozen=True):
    """How a notification went: per message for staff."""

    id: int
    event: Event
    message_id: int | None
    state: State
    channel: str | None
    attempts: int
    detail: str | None
    created_at: datetime
    done_at: datetime | None


_ITEM = (
    "id, relative_id, event, conversation_id, message_id, object_id, decision, attempts, created_at"
)


async def claim(db: Database, now: datetime, lease: float, limit: int) -> list[Item]:
    """Lease up to ``limit`` due rows for ``lease`` seconds (see the module docstring)."""
    lock = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else ""
    async with db.write() as sql:
        rows = await sql.fetch(
            "UPDATE outbox SET lease_until = $2, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_at <= $1"
            "  AND (lease_until IS NULL OR lease_until <= $1)"
            f"  ORDER BY next_at, id LIMIT $3{lock})"
            f" RETURNING {_ITEM}",
            now,
            now + timedelta(seconds=lease),
            limit,
        )
        items = [
            Item(
                id=r["id"],
                relative_id=r["relative_id"],
                event=r["event"],
                conversation_id=r["conversation_id"],
                message_id=r["message_id"],
                object_id=r["object_id"],
                decision=r["decision"],
                attempt=r["attempts"],
                created_at=sql.when(r["created_at"]),
            )
            for r in rows
        ]
    return sorted(items, key=lambda i: i.id)


async def finish(
    db: Database,
    item: Item,
    state: Literal["sent", "skipped", "failed"],
    channel: str | None,
    detail: str,
    now: datetime,
) -> bool:
    """Settle the claimed row for good, and record the attempt; False if the claim was lost."""
    async with db.write() as sql:
        changed = await sql.execute(
            "UPDATE outbox SET state = $3, channel = $4, detail = $5, done_at = $6,"
            " lease_until = NULL WHERE id = $1 AND attempts = $2 AND state = 'pending'",
            item.id,
            item.attempt,
            state,
            channel,
            detail,
            now,
        )
        if changed:
            await sql.execute(
                "INSERT INTO outbox_attempts (outbox_id, at, channel, ok, detail)"
                " VALUES ($1, $2, $3, $4, $5)",
                item.id,
                now,
                channel or "-",
                state == "sent",
                detail,
            )
    return bool(changed)


async def retry(
    db: Database, item: Item, channel: str, detail: str, at: datetime, now: datetime
) -> bool:
    """The attempt failed and may succeed later: due again at ``at``; the attempt recorded."""
    async with db.write() as sql:
        changed = await sql.execute(
            "UPDATE outbox SET next_at = $3, lease_until = NULL, detail = $4, channel = $5"
            " WHERE id = $1 AND attempts = $2 AND state = 'pending'",
            item.id,
            item.attempt,
            at,
            detail,
            channel,
        )
        if changed:
            await sql.execute(
                "INSERT INTO outbox_attempts (outbox_id, at, channel, ok, detail)"
                " VALUES ($1, $2, $3, $4, $5)",
                item.id,
                now,
                channel,
                False,
                detail,
            )
    return bool(changed)


async def next_due(db: Database) -> datetime | None:
    """When the earliest pending row is due (None: nothing pending)."""
    async with db.read() as sql:
        value = await sql.fetchval("SELECT min(next_at) FROM outbox WHERE state = 'pending'")
        return None if value is None else sql.when(value)


async def recently_told(
    db: Database, relative_id: int, conversation_id: int, since: datetime, before_id: int
) -> int | None:
    """The seq of the latest answer about the conversation whose notification (a template
    message, a push or an SMS: not a WeChat text, which carries the answer itself) reached the
    relative since ``since``; for coalescing (None: none)."""
    async with db.read() as sql:
        value = await sql.fetchval(
            "SELECT max(m.seq) FROM outbox o JOIN messages m"
            " ON m.id = o.message_id AND m.conversation_id = o.conversation_id"
            " WHERE o.relative_id = $1 AND o.conversation_id = $2 AND o.state = 'sent'"
            " AND o.channel IN ('template', 'push', 'sms') AND o.done_at >= $3 AND o.id < $4",
            relative_id,
            conversation_id,
            since,
            before_id,
        )
        return None if value is None else int(value)


async def deliveries(db: Database, message_ids: Sequence[int]) -> list[Delivery]:
    """The notifications of these messages (staff: did the answer reach the relative?)."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT id, event, message_id, state, channel, attempts, detail, created_at, done_at"
            f" FROM outbox WHERE message_id IN {ids_in(message_ids)} ORDER BY id"
        )
        return [
            Delivery(
                id=r["id"],
                event=r["event"],
                message_id=r["message_id"],
                state=r["state"],
                channel=r["channel"],
                attempts=r["attempts"],
                detail=r["detail"],
                created_at=sql.when(r["created_at"]),
                done_at=None if r["done_at"] is None else sql.when(r["done_at"]),
            )
            for r in rows
        ]


async def attempts(db: Database, item_id: int) -> list[tuple[str, bool, str]]:
    """(channel, ok, detail) of every attempt of one row, in order."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT channel, ok, detail FROM outbox_attempts WHERE outbox_id = $1 ORDER BY id",
            item_id,
        )
        return [(r["channel"], bool(r["ok"]), r["detail"]) for r in rows]


# the relative's choice and devices


async def channel_of(db: Database, relative_id: int) -> Channel:
    async with db.read() as sql:
        value = await sql.fetchval(
            "SELECT channel FROM notify_prefs WHERE relative_id = $1", relative_id
        )
    return value or "auto"


async def choose_channel(db: Database, relative_id: int, channel: Channel, now: datetime) -> None:
    async with db.write() as sql:
        await sql.execute(
            "INSERT INTO notify_prefs (relative_id, channel, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (relative_id) DO UPDATE"
            " SET channel = excluded.channel, updated_at = excluded.updated_at",
            relative_id,
            channel,
            now,
        )


async def add_device(
    db: Database, relative_id: int, endpoint: str, p256dh: str, auth: str, now: datetime
) -> PushDevice:
    """Subscribe a device (the same endpoint again refreshes its keys);
    ``Conflict("endpoint")`` if another relative's device has it."""
    async with db.write() as sql:
        holder = await sql.fetchval(
            "SELECT relative_id FROM push_subscriptions WHERE endpoint = $1", endpoint
        )
        if holder is not None and holder != relative_id:
            raise Conflict("endpoint")
        row = await sql.fetchrow(
            "INSERT INTO push_subscriptions (relative_id, endpoint, p256dh, auth, created_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (endpoint) DO UPDATE"
            " SET p256dh = excluded.p256dh, auth = excluded.auth"
            " RETURNING id, endpoint, p256dh, auth",
            relative_id,
            endpoint,
            p256dh,
            auth,
            now,
        )
        assert row is not None
        return PushDevice(row["id"], row["endpoint"], row["p256dh"], row["auth"])


async def remove_device(db: Database, relative_id: int | None, endpoint: str) -> bool:
    """Unsubscribe a device (``relative_id`` None: whoever had it, as when the push service
    says it is gone)."""
    async with db.write() as sql:
        if relative_id is None:
            changed = await sql.execute(
                "DELETE FROM push_subscriptions WHERE endpoint = $1", endpoint
            )
        else:
            changed = await sql.execute(
                "DELETE FROM push_subscriptions WHERE endpoint = $1 AND relative_id = $2",
                endpoint,
                relative_id,
            )
    return bool(changed)


async def devices(db: Database, relative_id: int) -> list[PushDevice]:
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT id, endpoint, p256dh, auth FROM push_subscriptions WHERE relative_id = $1"
            " ORDER BY id",
            relative_id,
        )
        return [PushDevice(r["id"], r["endpoint"], r["p256dh"], r["auth"]) for r in rows]


class Told(msgspec.Struct, frozen=True):
    """What a notification about an answer needs to say, read at send time."""

    phone: str | None
    inmate_id: int
    inmate_name: str
    seq: int
    body: str
    sender_name: str
    read_seq: int  # the relative's read cursor in the conversation


async def answer_facts(db: Database, item: Item) -> Told | None:
    """The facts of an ``answer`` row (None if its message is gone)."""
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT u.phone, i.id AS inmate_id, i.name AS inmate_name, m.seq, m.body,"
            " s.name AS sender_name, COALESCE(r.seq, 0) AS read_seq"
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " JOIN inmates i ON i.id = c.inmate_id JOIN users u ON u.id = $2"
            " JOIN users s ON s.id = m.sender_id"
            " LEFT JOIN read_cursors r ON r.conversation_id = c.id AND r.user_id = $2"
            " WHERE m.id = $1",
            item.message_id,
            item.relative_id,
        )
    if row is None:
        return None
    return Told(
        row["phone"],
        row["inmate_id"],
        row["inmate_name"],
        row["seq"],
        row["body"],
        row["sender_name"],
        row["read_seq"],
    )


async def phone_of(db: Database, relative_id: int) -> str | None:
    async with db.read() as sql:
        value = await sql.fetchval("SELECT phone FROM users WHERE id = $1", relative_id)
    return None if value is None else str(value)


async def visit_inmate(db: Database, visit_id: int) -> int | None:
    """The inmate a visit request is about (a visit decision links to its visits page)."""
    async with db.read() as sql:
        value = await sql.fetchval("SELECT inmate_id FROM visit_requests WHERE id = $1", visit_id)
    return None if value is None else int(value)
