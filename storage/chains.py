"""The hash chains as stored: reading a chain back, and verifying every one of them.

The rows were hashed in the transaction that stored them (migration 0014: PostgreSQL in SQL,
SQLite through ``domain.chain``). ``verify`` recomputes everything from the rows alone, with
``domain.chain``: the audit entries in chain order (``chain_n`` 1, 2, 3..., each
``sha256(previous || A(e))``, the last one the audit head), each conversation's messages in
``seq`` order (1, 2, 3... with no gap, each ``sha256(previous || C(m))``, the last one the
conversation's head), then every kept anchor (its digest recomputed from the hashes at the
positions it covers). It stops at the first record that does not hold and names it. It runs
on a live database: each chain is checked up to its head as first read, and a row found past
a head in the same snapshot as that head is reported as not chained.

A message whose text retention purged (``purged_at``) keeps its stored hash: its own hash
cannot be recomputed from an empty body, so it is taken as stored, and the next message's
link to it is checked as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from domain import chain
from storage.sql import Database, Row, Sql

AUDIT_PAGE = 5000


class ChainedMessage(msgspec.Struct, frozen=True):
    """One message as its chain sees it."""

    conv: int
    seq: int
    sender: int
    kind: str
    body: str
    at_us: int
    hash: bytes
    purged: bool
    attachments: tuple[str, ...] = ()  # hex sha256 of each file (none yet)

    def form(self) -> bytes:
        return chain.message_form(
            at_us=self.at_us,
            body=self.body,
            conv=self.conv,
            kind=self.kind,
            sender=self.sender,
            seq=self.seq,
            attachments=self.attachments,
        )


class Verdict(msgspec.Struct, frozen=True):
    """What ``verify`` found: ``broken`` names the first record that does not hold."""

    broken: str | None
    conversations: int
    messages: int
    audit_entries: int
    anchors: int


async def conversation_chain(
    sql: Sql, conversation_id: int, up_to: int | None = None
) -> list[ChainedMessage]:
    """A conversation's messages in ``seq`` order (up to seq ``up_to``), as chained."""
    rows = await sql.fetch(
        "SELECT seq, sender_id, kind, body, created_at, hash, purged_at FROM messages"
        " WHERE conversation_id = $1 AND (CAST($2 AS bigint) IS NULL OR seq <= $2)"
        " ORDER BY seq",
        conversation_id,
        up_to,
    )
    return [
        ChainedMessage(
            conv=conversation_id,
            seq=r["seq"],
            sender=r["sender_id"],
            kind=r["kind"],
            body=r["body"],
            at_us=chain.at_us(sql.when(r["created_at"])),
            hash=bytes(r["hash"] or b""),
            purged=r["purged_at"] is not None,
        )
        for r in rows
    ]


def _walk(found: Sequence[ChainedMessage]) -> tuple[list[bytes], str | None]:
    """The recomputed hash of each message, and what breaks first (``None``: it holds)."""
    previous, hashes = chain.GENESIS, list[bytes]()
    for expected_seq, message in enumerate(found, start=1):
        where = f"conversation {message.conv} seq {message.seq}"
        if message.seq != expected_seq:
            return hashes, f"conversation {message.conv} seq {expected_seq}: missing"
        link = message.hash if message.purged else chain.step(previous, message.form())
        if link != message.hash:
            return hashes, f"{where}: hash does not match its content and the previous hash"
        hashes.append(link)
        previous = link
    return hashes, None


def _audit_form(sql: Sql, row: Any) -> bytes:
    return chain.audit_form(
        id=row["id"],
        at_us=chain.at_us(sql.when(row["at"])),
        actor_id=row["actor_id"],
        action=row["action"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        prison_id=row["prison_id"],
        before=sql.unjson(row["before"]),
        after=sql.unjson(row["after"]),
    )


class _Anchors:
    """The kept anchors, and the recomputed hashes at the positions they cover."""

    def __init__(self, sql: Sql, rows: Sequence[Row]) -> None:
        self.rows = sorted(rows, key=lambda a: str(a["day"]))
        self.sql = sql
        self.messages: dict[tuple[int, int], bytes | None] = {}
        self.audit: dict[int, bytes | None] = {0: chain.GENESIS}
        for row in rows:
            for conv, seq in sql.unjson(row["heads"]).items():
                self.messages[(int(conv), int(seq))] = None
            self.audit.setdefault(int(row["audit_n"]), None)

    def saw_messages(self, conv: int, hashes: Sequence[bytes]) -> None:
        for seq, link in enumerate(hashes, start=1):
            if (conv, seq) in self.messages:
                self.messages[(conv, seq)] = link

    def broken(self) -> str | None:
        for row in self.rows:
            day = self.sql.day(row["day"])
            heads = []
            for conv, seq in self.sql.unjson(row["heads"]).items():
                covered = self.messages[(int(conv), int(seq))]
                if covered is None:
                    return f"anchor {day}: conversation {conv} seq {seq} is gone"
                heads.append((int(conv), covered))
            audit_head = self.audit[int(row["audit_n"])]
            if audit_head is None:
                return f"anchor {day}: audit position {row['audit_n']} is gone"
            if chain.anchor_digest(heads, audit_head) != bytes(row["digest"]):
                return f"anchor {day}: digest does not match the chains"
        return None


async def _conversations(sql: Sql, anchors: _Anchors, counted: dict[str, int]) -> str | None:
    """Each conversation's chain up to its head as read (a message committed meanwhile moves
    the head and its last_seq in the same transaction, so it is simply not yet covered)."""
    for conv in await sql.fetch("SELECT id, last_seq, chain_head FROM conversations ORDER BY id"):
        found = await conversation_chain(sql, conv["id"], conv["last_seq"])
        hashes, broken = _walk(found)
        if broken:
            return broken
        if len(found) != conv["last_seq"] or bytes(conv["chain_head"]) != (
            hashes[-1] if hashes else chain.GENESIS
        ):
            return f"conversation {conv['id']}: head does not match its last message"
        counted["conversations"] += 1
        counted["messages"] += len(found)
        anchors.saw_messages(conv["id"], hashes)
    beyond = await sql.fetchrow(  # one statement: one snapshot of both tables
        "SELECT m.conversation_id, min(m.seq) AS seq FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id"
        " WHERE m.seq > c.last_seq OR m.hash IS NULL GROUP BY m.conversation_id"
        " ORDER BY m.conversation_id LIMIT 1"
    )
    if beyond is not None:
        return f"conversation {beyond['conversation_id']} seq {beyond['seq']}: not chained"
    return None


async def _audit_chain(sql: Sql, anchors: _Anchors, counted: dict[str, int]) -> str | None:
    """The audit chain up to its head as read (entries up to it are all committed: the head
    row's lock is held from an entry's insert to its commit)."""
    head = await sql.fetchrow("SELECT n, head FROM audit_chain")
    length, last = (0, chain.GENESIS) if head is None else (head["n"], bytes(head["head"]))
    previous, n = chain.GENESIS, 0
    while n < length:
        page = await sql.fetch(
            "SELECT id, at, actor_id, action, object_type, object_id, prison_id, before,"
            " after, chain_n, hash FROM audit_entries WHERE chain_n > $1 AND chain_n <= $2"
            " ORDER BY chain_n LIMIT $3",
            n,
            length,
            AUDIT_PAGE,
        )
        if not page:
            return f"audit chain position {n + 1}: missing"
        for row in page:
            n += 1
            if row["chain_n"] != n:
                return f"audit chain position {n}: missing"
            link = chain.step(previous, _audit_form(sql, row))
            if link != bytes(row["hash"] or b""):
                return (
                    f"audit id {row['id']}: hash does not match its content and the previous hash"
                )
            previous = link
            if n in anchors.audit:
                anchors.audit[n] = link
    counted["audit_entries"] = n
    if previous != last:
        return "audit chain: head does not match its last entry"
    unchained = await sql.fetchval(  # one statement: one snapshot
        "SELECT min(id) FROM audit_entries WHERE chain_n IS NULL OR hash IS NULL"
        " OR chain_n > COALESCE((SELECT n FROM audit_chain), 0)"
    )
    return None if unchained is None else f"audit id {unchained}: not chained"


async def verify(db: Database) -> Verdict:
    """Recompute every chain and every anchor (see the module docstring)."""
    counted = {"conversations": 0, "messages": 0, "audit_entries": 0}
    async with db.read() as sql:
        anchors = _Anchors(
            sql, await sql.fetch("SELECT day, digest, heads, audit_n FROM chain_anchors")
        )
        broken = (
            await _audit_chain(sql, anchors, counted)  # its head first: see _audit_chain
            or await _conversations(sql, anchors, counted)
            or anchors.broken()
        )
    return Verdict(broken, anchors=len(anchors.rows), **counted)
