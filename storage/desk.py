"""The duty desk's storage: threads and their life cycle, duty, canned replies.

Written once over ``store`` (``storage/sql.py``), for both stores. What a message does to
its thread (a relative's question starts a cycle, an officer's first answer is its first
response) is done by the triggers of migration 0003 in the message's own transaction; the
changes staff make here (claim, transfer, resolve) and a relative's rating each lock the
thread's row (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already excludes
every other writer), decide from what they read, write, and append their audit entry with
before and after, all in one transaction. So two officers claiming at once are serialised by
the row lock: the second one reads the first one's claim and is told who holds the thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from domain.records import Conversation, ConversationState
from storage import audit_trail, consent
from storage.errors import NotFound
from storage.sql import Database, Row, Sql, any_of, for_update, ids_in


class Thread(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation as the desk shows it: names, current cycle and who holds it."""

    id: int
    prison_id: int
    inmate_id: int
    inmate_name: str
    relative_id: int
    relative_name: str
    state: ConversationState
    cycle: int
    assigned_officer_id: int | None
    assigned_officer_name: str | None
    wait_started_at: datetime | None  # start of the current cycle's wait
    first_reply_at: datetime | None  # the current cycle's first officer answer
    handover_note: str | None  # the last transfer's note (staff only)
    rating: int | None  # the current cycle's rating
    last_seq: int
    created_at: datetime
    updated_at: datetime

    @property
    def conversation(self) -> Conversation:
        """The facts the policy decides on."""
        return Conversation(
            self.id,
            self.prison_id,
            self.inmate_id,
            self.relative_id,
            self.state,
            self.assigned_officer_id,
            self.last_seq,
            self.created_at,
        )


class Canned(msgspec.Struct, frozen=True):
    id: int
    prison_id: int
    short_name: str
    body: str


class Held(Exception):
    """Another officer holds the thread (claim, transfer or resolve by someone else)."""

    def __init__(self, holder_id: int, holder_name: str) -> None:
        super().__init__(f"{holder_name} has this conversation")
        self.holder_id = holder_id
        self.holder_name = holder_name


class WrongState(Exception):
    """The thread is not in a state that allows the change (or it was rated already)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


class NotAnOfficer(Exception):
    """A transfer's target is not an officer of the thread's prison (or is the giver)."""


class OffDuty(Exception):
    """The officer who would act, or the colleague a thread would be handed to, is not on
    duty in the thread's prison: an off-duty officer holds nothing (going off duty returns its
    threads to the queue), so it neither claims, resolves nor is handed a thread."""

    def __init__(self, officer_id: int, *, target: bool) -> None:
        who = "the colleague" if target else "you"
        super().__init__(f"{who} (officer {officer_id}) must be on duty for this")
        self.officer_id = officer_id
        self.target = target


class DutyChange(msgspec.Struct, frozen=True):
    changed: bool  # a flag changed
    released: list[Thread]  # threads the officer held, back in the queue (going off duty)
    handed: list[Thread] = []  # threads the officer held, handed to the colleague it chose


# threads

_THREAD = """
SELECT c.id, c.prison_id, c.inmate_id, i.name AS inmate_name, c.relative_id,
       r.name AS relative_name, c.state, c.cycle, c.assigned_officer_id,
       o.name AS officer_name, c.wait_started_at, c.first_reply_at, c.handover_note,
       cc.rating, c.last_seq, c.created_at, c.updated_at
FROM conversations c
JOIN inmates i ON i.id = c.inmate_id
JOIN users r ON r.id = c.relative_id
LEFT JOIN users o ON o.id = c.assigned_officer_id
LEFT JOIN conversation_cycles cc ON cc.conversation_id = c.id AND cc.cycle = c.cycle
"""

# The open queue first (waiting, then active), each oldest wait first.
_QUEUE_ORDER = (
    " ORDER BY CASE c.state WHEN 'waiting' THEN 0 WHEN 'active' THEN 1 WHEN 'new' THEN 2"
    " ELSE 3 END, c.wait_started_at IS NULL, c.wait_started_at, c.id"
)


def _maybe(sql: Sql, value: Any) -> datetime | None:
    return None if value is None else sql.when(value)


def _thread(sql: Sql, row: Row) -> Thread:
    return Thread(
        id=row["id"],
        prison_id=row["prison_id"],
        inmate_id=row["inmate_id"],
        inmate_name=row["inmate_name"],
        relative_id=row["relative_id"],
        relative_name=row["relative_name"],
        state=row["state"],
        cycle=row["cycle"],
        assigned_officer_id=row["assigned_officer_id"],
        assigned_officer_name=row["officer_name"],
        wait_started_at=_maybe(sql, row["wait_started_at"]),
        first_reply_at=_maybe(sql, row["first_reply_at"]),
        handover_note=row["handover_note"],
        rating=row["rating"],
        last_seq=row["last_seq"],
        created_at=sql.when(row["created_at"]),
        updated_at=sql.when(row["updated_at"]),
    )


async def _read_thread(sql: Sql, conv_id: int) -> Thread:
    row = await sql.fetchrow(_THREAD + " WHERE c.id = $1", conv_id)
    if row is None:
        raise NotFound(f"conversation {conv_id}")
    return _thread(sql, row)


async def thread(db: Database, conv_id: int) -> Thread:
    async with db.read() as sql:
        return await _read_thread(sql, conv_id)


async def threads(
    db: Database,
    *,
    relative_id: int | None = None,
    prison_ids: Sequence[int] | None = None,
    inmate_ids: Sequence[int] | None = None,
    states: Sequence[ConversationState] | None = None,
    limit: int = 100,
) -> list[Thread]:
    """A relative's threads (most recently active first), or the queue of some prisons (the
    open queue first: waiting, then active, each oldest wait first), filtered by state."""
    where: list[str] = []
    args: list[Any] = []
    if relative_id is not None:
        args.append(relative_id)
        where.append(
            f"(c.relative_id = ${len(args)} OR c.id IN (SELECT m.conversation_id"
            " FROM family_members m JOIN family_cases f ON f.conversation_id = m.conversation_id"
            f" AND f.enabled WHERE m.relative_id = ${len(args)}))"
        )
    if prison_ids is not None:
        where.append(f"c.prison_id IN {ids_in(prison_ids)}")
    if inmate_ids is not None:
        where.append(f"c.inmate_id IN {ids_in(inmate_ids)}")
    if states is not None:
        marks = []
        for state in states:
            args.append(state)
            marks.append(f"${len(args)}")
        where.append(f"c.state IN ({', '.join(marks) or 'NULL'})")
    args.append(max(1, min(limit, 500)))
    order = " ORDER BY c.updated_at DESC, c.id DESC" if relative_id is not None else _QUEUE_ORDER
    query = (
        _THREAD
        + (" WHERE " + " AND ".join(where) if where else "")
        + order
        + f" LIMIT ${len(args)}"
    )
    async with db.read() as sql:
        return [_thread(sql, row) for row in await sql.fetch(query, *args)]


async def read_by_others(db: Database, conv_ids: Sequence[int], user_id: int) -> dict[int, int]:
    """Per conversation, the highest seq someone other than ``user_id`` marked read: what the
    live ``read`` events told a page before it was reloaded (conversations nobody else read
    are left out)."""
    if not conv_ids:
        return {}
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT conversation_id, MAX(seq) AS seq FROM read_cursors"
            f" WHERE conversation_id IN {ids_in(conv_ids)} AND user_id <> $1"
            " GROUP BY conversation_id",
            user_id,
        )
    return {int(row["conversation_id"]): int(row["seq"]) for row in rows}


async def read_by(db: Database, conv_ids: Sequence[int], user_id: int) -> dict[int, int]:
    """Per conversation, the highest seq ``user_id`` itself marked read (on any device): where
    its unread messages start after a reload (conversations it never read are left out)."""
    if not conv_ids:
        return {}
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT conversation_id, seq FROM read_cursors"
            f" WHERE conversation_id IN {ids_in(conv_ids)} AND user_id = $1",
            user_id,
        )
    return {int(row["conversation_id"]): int(row["seq"]) for row in rows}


async def open_thread(
    db: Database, relative_id: int, inmate_id: int, now: datetime
) -> tuple[Thread, bool]:
    """The thread between the relative and the inmate's prison, and whether it was created
    now (for a member of an enabled family case: the shared thread, ``storage.consent``).
    ``NotFound`` if there is no such inmate."""
    async with db.write() as sql:
        shared = await consent.family_thread(sql, relative_id, inmate_id)
        if shared is not None:
            return await _read_thread(sql, shared), False
        created = await sql.fetchval(
            "INSERT INTO conversations (prison_id, inmate_id, relative_id, created_at,"
            " updated_at) SELECT prison_id, id, $1, $3, $3 FROM inmates WHERE id = $2"
            " ON CONFLICT (relative_id, inmate_id) DO NOTHING RETURNING id",
            relative_id,
            inmate_id,
            now,
        )
        conv_id = created or await sql.fetchval(
            "SELECT id FROM conversations WHERE relative_id = $1 AND inmate_id = $2",
            relative_id,
            inmate_id,
        )
        if conv_id is None:
            raise NotFound(f"inmate {inmate_id}")
        return await _read_thread(sql, conv_id), created is not None


# the life cycle, by staff and by the relative


async def _require_duty(
    db: Database, sql: Sql, officer_id: int, prison_id: int, *, target: bool
) -> None:
    """``OffDuty`` unless the officer said it is on duty in the prison. Locks the officer's
    row first (before the thread's, the order ``change_duty`` takes them in), so going off
    duty and a claim are one after the other: a thread is never left held by an officer who
    went off duty meanwhile."""
    await sql.execute("SELECT id FROM users WHERE id = $1" + for_update(db), officer_id)
    on = await sql.fetchval(
        "SELECT on_duty FROM duty WHERE user_id = $1 AND prison_id = $2", officer_id, prison_id
    )
    if not on:
        raise OffDuty(officer_id, target=target)


async def _prison_of(sql: Sql, conv_id: int) -> int:
    prison: int | None = await sql.fetchval(
        "SELECT prison_id FROM conversations WHERE id = $1", conv_id
    )
    if prison is None:
        raise NotFound(f"conversation {conv_id}")
    return prison


async def _locked(db: Database, sql: Sql, conv_id: int) -> Row:
    """The thread's row, locked until the transaction ends."""
    lock = for_update(db)
    row = await sql.fetchrow(
        "SELECT state, cycle, prison_id, assigned_officer_id FROM conversations WHERE id = $1"
        + lock,
        conv_id,
    )
    if row is None:
        raise NotFound(f"conversation {conv_id}")
    return row


async def _audit(
    sql: Sql,
    at: datetime,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: int,
    prison_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await audit_trail.record(
        sql,
        at=at,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        prison_id=prison_id,
        before=before,
        after=after,
    )


async def _holder(sql: Sql, row: Row) -> Held:
    """Who holds the thread, read after the lock (a join in the locking SELECT would give the
    name as it was before a claim the lock waited for)."""
    holder: int = row["assigned_officer_id"]
    name = await sql.fetchval("SELECT name FROM users WHERE id = $1", holder)
    return Held(holder, name or "another officer")


async def claim(
    db: Database, conv_id: int, officer_id: int, now: datetime, *, require_duty: bool = False
) -> tuple[Thread, bool]:
    """waiting -> active, held by ``officer_id``; whether it changed (claiming a thread one
    already holds changes nothing). ``Held`` if another officer has it, ``WrongState`` if
    there is no open question to claim; with ``require_duty`` (the desk's handlers; scripted
    histories leave it off) ``OffDuty`` unless the officer is on duty."""
    async with db.write() as sql:
        if require_duty:
            await _require_duty(db, sql, officer_id, await _prison_of(sql, conv_id), target=False)
        row = await _locked(db, sql, conv_id)
        state, holder = row["state"], row["assigned_officer_id"]
        if state == "active" and holder == officer_id:
            return await _read_thread(sql, conv_id), False
        if state == "active":
            raise await _holder(sql, row)
        if state != "waiting":
            raise WrongState(state, f"nothing to claim: the conversation is {state}")
        await sql.execute(
            "UPDATE conversations SET state = 'active', assigned_officer_id = $2,"
            " updated_at = $3 WHERE id = $1",
            conv_id,
            officer_id,
            now,
        )
        await _audit(
            sql,
            now,
            officer_id,
            "conversation.claimed",
            "conversation",
            conv_id,
            row["prison_id"],
            {"state": state, "officer_id": holder, "cycle": row["cycle"]},
            {"state": "active", "officer_id": officer_id, "cycle": row["cycle"]},
        )
        return await _read_thread(sql, conv_id), True


async def transfer(
    db: Database,
    conv_id: int,
    by: int,
    to: int,
    note: str,
    now: datetime,
    *,
    require_duty: bool = False,
    reassign: bool = False,
) -> Thread:
    """Hand an active thread from its holder ``by`` to officer ``to`` of the same prison,
    keeping the hand-over note. ``Held`` if ``by`` does not hold it, ``WrongState`` unless
    active, ``NotAnOfficer`` if ``to`` is not another officer of the prison; with
    ``require_duty``, ``OffDuty`` unless ``to`` is on duty. ``reassign`` (the bureau admin):
    ``by`` need not hold it, and a waiting thread is given to ``to`` as well."""
    async with db.write() as sql:
        if require_duty:
            await _require_duty(db, sql, to, await _prison_of(sql, conv_id), target=True)
        row = await _locked(db, sql, conv_id)
        state, holder = row["state"], row["assigned_officer_id"]
        if state != "active" and not (reassign and state == "waiting"):
            raise WrongState(state, f"only an active conversation is transferred, not {state}")
        if holder != by and not reassign:
            raise await _holder(sql, row)
        target = await sql.fetchval(
            "SELECT u.id FROM users u JOIN user_prisons p ON p.user_id = u.id"
            " WHERE u.id = $1 AND u.role = 'officer' AND p.prison_id = $2 AND u.disabled = $3",
            to,
            row["prison_id"],
            False,
        )
        if target is None or to == holder:
            raise NotAnOfficer(f"user {to} is not another officer of this prison")
        await sql.execute(
            "UPDATE conversations SET state = 'active', assigned_officer_id = $2,"
            " handover_note = $3, updated_at = $4 WHERE id = $1",
            conv_id,
            to,
            note,
            now,
        )
        await _audit(
            sql,
            now,
            by,
            "conversation.transferred",
            "conversation",
            conv_id,
            row["prison_id"],
            {"state": state, "officer_id": holder, "cycle": row["cycle"]},
            {"state": "active", "officer_id": to, "cycle": row["cycle"], "note": note},
        )
        return await _read_thread(sql, conv_id)


async def resolve(
    db: Database,
    conv_id: int,
    by: int,
    now: datetime,
    *,
    require_duty: bool = False,
    any_holder: bool = False,
) -> Thread:
    """waiting | active -> resolved, recorded on the cycle (``resolved_at``, ``resolved_by``).
    An active thread is resolved by its holder only (``Held`` otherwise; ``any_holder``: the
    bureau admin, whoever holds it); ``WrongState`` unless waiting or active; with
    ``require_duty``, ``OffDuty`` unless ``by`` is on duty."""
    async with db.write() as sql:
        if require_duty:
            await _require_duty(db, sql, by, await _prison_of(sql, conv_id), target=False)
        row = await _locked(db, sql, conv_id)
        state, holder = row["state"], row["assigned_officer_id"]
        if state not in ("waiting", "active"):
            raise WrongState(state, f"nothing to resolve: the conversation is {state}")
        if state == "active" and holder != by and not any_holder:
            raise await _holder(sql, row)
        await sql.execute(
            "UPDATE conversations SET state = 'resolved', updated_at = $2 WHERE id = $1",
            conv_id,
            now,
        )
        await sql.execute(
            "UPDATE conversation_cycles SET resolved_at = $3, resolved_by = $4"
            " WHERE conversation_id = $1 AND cycle = $2",
            conv_id,
            row["cycle"],
            now,
            by,
        )
        await _audit(
            sql,
            now,
            by,
            "conversation.resolved",
            "conversation",
            conv_id,
            row["prison_id"],
            {"state": state, "officer_id": holder, "cycle": row["cycle"]},
            {"state": "resolved", "officer_id": holder, "cycle": row["cycle"]},
        )
        return await _read_thread(sql, conv_id)


async def _release(
    sql: Sql, row: Row, conv_id: int, by: int | None, now: datetime, via: str, note: str | None
) -> None:
    """active -> waiting, held by nobody, audited ``conversation.released`` (``via``: who or
    what let it go). The cycle and its wait start are kept: an unanswered question is as late
    as it was, and still counted so in the figures."""
    await sql.execute(
        "UPDATE conversations SET state = 'waiting', assigned_officer_id = NULL,"
        " handover_note = $2, updated_at = $3 WHERE id = $1",
        conv_id,
        note,
        now,
    )
    after: dict[str, Any] = {"state": "waiting", "officer_id": None, "cycle": row["cycle"]}
    after["via"] = via
    if note:
        after["note"] = note
    await _audit(
        sql,
        now,
        by,
        "conversation.released",
        "conversation",
        conv_id,
        row["prison_id"],
        {"state": "active", "officer_id": row["assigned_officer_id"], "cycle": row["cycle"]},
        after,
    )


async def held_threads(db: Database) -> list[Thread]:
    """Every active thread (each has its holder), by prison."""
    async with db.read() as sql:
        rows = await sql.fetch(
            _THREAD + " WHERE c.state = 'active' AND c.assigned_officer_id IS NOT NULL"
            " ORDER BY c.prison_id, c.id"
        )
        return [_thread(sql, row) for row in rows]


async def release(
    db: Database,
    conv_id: int,
    by: int,
    now: datetime,
    *,
    note: str | None = None,
    any_holder: bool = False,
    via: str | None = None,
) -> Thread:
    """An active thread back to the queue (waiting, held by nobody), with an optional note
    for whoever takes it. By its holder (``Held`` otherwise; ``any_holder``: the bureau
    admin, whoever holds it); ``WrongState`` unless active."""
    async with db.write() as sql:
        row = await _locked(db, sql, conv_id)
        state, holder = row["state"], row["assigned_officer_id"]
        if state != "active":
            raise WrongState(state, f"only an active conversation is released, not {state}")
        if holder != by and not any_holder:
            raise await _holder(sql, row)
        how = via or ("admin" if holder != by else "holder")
        actor = None if how == "disconnected" else by  # the system let it go, not the holder
        await _release(sql, row, conv_id, actor, now, how, note)
        return await _read_thread(sql, conv_id)


async def rate(
    db: Database, conv_id: int, relative_id: int, rating: int, comment: str, now: datetime
) -> Thread:
    """The relative's rating of the current cycle: once, and only once it is resolved
    (``WrongState`` otherwise)."""
    async with db.write() as sql:
        row = await _locked(db, sql, conv_id)
        if row["state"] != "resolved":
            raise WrongState(row["state"], "only an answered (resolved) question can be rated")
        rated = await sql.execute(
            "UPDATE conversation_cycles SET rating = $3, rating_comment = $4"
            " WHERE conversation_id = $1 AND cycle = $2 AND rating IS NULL",
            conv_id,
            row["cycle"],
            rating,
            comment,
        )
        if not rated:
            raise WrongState("resolved", "this answer has been rated already")
        await _audit(
            sql,
            now,
            relative_id,
            "conversation.rated",
            "conversation",
            conv_id,
            row["prison_id"],
            {"cycle": row["cycle"], "rating": None},
            {"cycle": row["cycle"], "rating": rating, "comment": comment},
        )
        return await _read_thread(sql, conv_id)


class Cycle(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: int
    cycle: int
    prison_id: int
    wait_started_at: datetime
    first_reply_at: datetime | None
    resolved_at: datetime | None
    resolved_by: int | None
    rating: int | None
    rating_comment: str | None


async def cycles(db: Database, conv_id: int) -> list[Cycle]:
    """Every cycle of a thread, oldest first."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT * FROM conversation_cycles WHERE conversation_id = $1 ORDER BY cycle",
            conv_id,
        )
        return [
            Cycle(
                conversation_id=r["conversation_id"],
                cycle=r["cycle"],
                prison_id=r["prison_id"],
                wait_started_at=sql.when(r["wait_started_at"]),
                first_reply_at=_maybe(sql, r["first_reply_at"]),
                resolved_at=_maybe(sql, r["resolved_at"]),
                resolved_by=r["resolved_by"],
                rating=r["rating"],
                rating_comment=r["rating_comment"],
            )
            for r in rows
        ]


# duty


async def said_on_duty(db: Database, officer_id: int) -> bool:
    """Whether the officer said it is on duty (never said: off)."""
    return officer_id in await on_duty_of(db, [officer_id])


async def on_duty_of(db: Database, officer_ids: Sequence[int]) -> frozenset[int]:
    """Which of these officers said they are on duty (:func:`said_on_duty` in one read)."""
    matches, args = any_of(db, "user_id", officer_ids)
    async with db.read() as sql:
        rows = await sql.fetch(f"SELECT user_id FROM duty WHERE on_duty AND {matches}", *args)
    return frozenset(r["user_id"] for r in rows)


async def change_duty(
    db: Database,
    officer_id: int,
    prison_ids: Sequence[int],
    on_duty: bool,
    now: datetime,
    *,
    hand_to: int | None = None,
    note: str | None = None,
) -> DutyChange:
    """Record the officer's duty flag for its prisons (audited ``duty.changed`` per prison
    whose flag changed). Going off duty also hands every thread it holds in those prisons on,
    in the same transaction: to the colleague ``hand_to`` (audited ``conversation.transferred``
    with ``note``, via ``off_duty``), or else back to the queue with ``note``
    (``conversation.released`` via ``off_duty``): a thread held by an officer who left was
    stuck (active, its new questions in no queue, its colleagues refused). ``NotAnOfficer``
    when ``hand_to`` is not another officer of a thread's prison, ``OffDuty`` when it is not
    on duty there: then nothing changes at all."""
    changed = False
    released: list[Thread] = []
    handed: list[Thread] = []
    async with db.write() as sql:
        # one change of an officer's flags at a time (its flags may not have rows yet); with a
        # colleague, both rows, in id order (two officers handing to each other never deadlock)
        people = {officer_id}
        if hand_to is not None and not on_duty:
            people.add(hand_to)
        await sql.execute(
            f"SELECT id FROM users WHERE id IN {ids_in(sorted(people))} ORDER BY id"
            + for_update(db)
        )
        for prison_id in sorted(set(prison_ids)):
            was = await sql.fetchval(
                "SELECT on_duty FROM duty WHERE user_id = $1 AND prison_id = $2",
                officer_id,
                prison_id,
            )
            before = bool(was) if was is not None else False
            if was is not None and before == on_duty:
                continue
            await sql.execute(
                "INSERT INTO duty (user_id, prison_id, on_duty, since) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (user_id, prison_id) DO UPDATE SET on_duty = excluded.on_duty,"
                " since = excluded.since",
                officer_id,
                prison_id,
                on_duty,
                now,
            )
            if before != on_duty:
                changed = True
                await _audit(
                    sql,
                    now,
                    officer_id,
                    "duty.changed",
                    "user",
                    officer_id,
                    prison_id,
                    {"on_duty": before},
                    {"on_duty": on_duty},
                )
        if not on_duty:
            held = await sql.fetch(
                "SELECT id, state, cycle, prison_id, assigned_officer_id FROM conversations"
                " WHERE assigned_officer_id = $1 AND state = 'active'"
                f" AND prison_id IN {ids_in(prison_ids)} ORDER BY id" + for_update(db),
                officer_id,
            )
            for row in held:
                if hand_to is None:
                    await _release(sql, row, row["id"], officer_id, now, "off_duty", note)
                    released.append(await _read_thread(sql, row["id"]))
                    continue
                await _hand_over(sql, row, officer_id, hand_to, note, now)
                handed.append(await _read_thread(sql, row["id"]))
    return DutyChange(changed, released, handed)


async def release_held(
    db: Database, sql: Sql, officer_id: int, by: int, now: datetime, note: str
) -> list[Thread]:
    """Every thread ``officer_id`` holds back to the queue with ``note``, inside the caller's
    transaction (an account disabled: ``via`` ``disabled``, audited as done by ``by``)."""
    held = await sql.fetch(
        "SELECT id, state, cycle, prison_id, assigned_officer_id FROM conversations"
        " WHERE assigned_officer_id = $1 AND state = 'active' ORDER BY id" + for_update(db),
        officer_id,
    )
    for row in held:
        await _release(sql, row, row["id"], by, now, "disabled", note)
    return [await _read_thread(sql, row["id"]) for row in held]


async def _hand_over(
    sql: Sql, row: Row, officer_id: int, to: int, note: str | None, now: datetime
) -> None:
    """One held thread to the colleague ``to`` (locked by the caller), going off duty."""
    prison_id = row["prison_id"]
    target = await sql.fetchval(
        "SELECT u.id FROM users u JOIN user_prisons p ON p.user_id = u.id"
        " WHERE u.id = $1 AND u.role = 'officer' AND p.prison_id = $2 AND u.disabled = $3",
        to,
        prison_id,
        False,
    )
    if target is None or to == officer_id:
        raise NotAnOfficer(f"user {to} is not another officer of this prison")
    on = await sql.fetchval(
        "SELECT on_duty FROM duty WHERE user_id = $1 AND prison_id = $2", to, prison_id
    )
    if not on:
        raise OffDuty(to, target=True)
    await sql.execute(
        "UPDATE conversations SET assigned_officer_id = $2, handover_note = $3, updated_at = $4"
        " WHERE id = $1",
        row["id"],
        to,
        note,
        now,
    )
    after: dict[str, Any] = {"state": "active", "officer_id": to, "cycle": row["cycle"]}
    after |= {"note": note, "via": "off_duty"} if note else {"via": "off_duty"}
    await _audit(
        sql,
        now,
        officer_id,
        "conversation.transferred",
        "conversation",
        row["id"],
        prison_id,
        {"state": "active", "officer_id": officer_id, "cycle": row["cycle"]},
        after,
    )


# canned replies


def _canned(row: Row) -> Canned:
    return Canned(row["id"], row["prison_id"], row["short_name"], row["body"])


async def canned_replies(db: Database, prison_ids: Sequence[int]) -> list[Canned]:
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT id, prison_id, short_name, body FROM canned_replies"
            f" WHERE prison_id IN {ids_in(prison_ids)} ORDER BY prison_id, short_name"
        )
    return [_canned(r) for r in rows]


async def canned_reply(db: Database, canned_id: int) -> Canned:
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT id, prison_id, short_name, body FROM canned_replies WHERE id = $1", canned_id
        )
    if row is None:
        raise NotFound(f"canned reply {canned_id}")
    return _canned(row)


async def canned_by_name(db: Database, prison_id: int, short_name: str) -> Canned:
    async with db.read() as sql:
        row = await sql.fetchrow(
            "SELECT id, prison_id, short_name, body FROM canned_replies"
            " WHERE prison_id = $1 AND short_name = $2",
            prison_id,
            short_name,
        )
    if row is None:
        raise NotFound(f"canned reply {short_name}")
    return _canned(row)


def _canned_dict(canned: Canned) -> dict[str, Any]:
    return {"short_name": canned.short_name, "body": canned.body}


async def add_canned(
    db: Database, prison_id: int, short_name: str, body: str, actor_id: int, now: datetime
) -> Canned:
    """``Conflict`` if the prison has a reply of that short name."""
    async with db.write() as sql:
        row = await sql.fetchrow(
            "INSERT INTO canned_replies (prison_id, short_name, body) VALUES ($1, $2, $3)"
            " RETURNING id, prison_id, short_name, body",
            prison_id,
            short_name,
            body,
        )
        assert row is not None  # RETURNING gives the row written
        canned = _canned(row)
        await _audit(
            sql,
            now,
            actor_id,
            "canned.created",
            "canned_reply",
            canned.id,
            prison_id,
            None,
            _canned_dict(canned),
        )
    return canned


async def update_canned(
    db: Database, canned_id: int, short_name: str, body: str, actor_id: int, now: datetime
) -> Canned:
    """``NotFound``, or ``Conflict`` if another reply of the prison has that short name."""
    async with db.write() as sql:
        old = await sql.fetchrow(
            "SELECT id, prison_id, short_name, body FROM canned_replies WHERE id = $1"
            + for_update(db),
            canned_id,
        )
        if old is None:
            raise NotFound(f"canned reply {canned_id}")
        row = await sql.fetchrow(
            "UPDATE canned_replies SET short_name = $2, body = $3 WHERE id = $1"
            " RETURNING id, prison_id, short_name, body",
            canned_id,
            short_name,
            body,
        )
        assert row is not None  # RETURNING gives the row written
        canned = _canned(row)
        await _audit(
            sql,
            now,
            actor_id,
            "canned.updated",
            "canned_reply",
            canned_id,
            canned.prison_id,
            _canned_dict(_canned(old)),
            _canned_dict(canned),
        )
    return canned


async def delete_canned(db: Database, canned_id: int, actor_id: int, now: datetime) -> None:
    async with db.write() as sql:
        old = await sql.fetchrow(
            "DELETE FROM canned_replies WHERE id = $1 RETURNING id, prison_id, short_name, body",
            canned_id,
        )
        if old is None:
            raise NotFound(f"canned reply {canned_id}")
        canned = _canned(old)
        await _audit(
            sql,
            now,
            actor_id,
            "canned.deleted",
            "canned_reply",
            canned_id,
            canned.prison_id,
            _canned_dict(canned),
            None,
        )
