"""The hash chains as stored: reading a chain back, and verifying every one of them.

The rows were hashed in the transaction that stored them (migration 0014: PostgreSQL in SQL,
SQLite through ``domain.chain``). ``verify`` recomputes everything from the rows alone, with
``domain.chain``: each conversation's messages in ``seq`` order (seqs 1, 2, 3... with no gap,
each hash ``sha256(previous || C(m))``, the last one the conversation's head), the audit
entries in chain order (``chain_n`` 1, 2, 3..., each ``sha256(previous || A(e))``, the last
one the audit head), then every kept anchor (its digest recomputed from the hashes at the
positions it covers). It stops at the first record that does not hold and names it.

A message whose text retention purged (``purged_at``) keeps its stored hash: its own hash
cannot be recomputed from an empty body, so it is taken as stored, and the next message's
link to it is checked as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from domain import chain
from storage.sql import Database, Sql

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


async def conversation_chain(sql: Sql, conversation_id: int) -> list[ChainedMessage]:
    """A conversation's messages in ``seq`` order, as chained."""
    rows = await sql.fetch(
        "SELECT seq, sender_id, kind, body, created_at, hash, purged_at FROM messages"
        " WHERE conversation_id = $1 ORDER BY seq",
        conversation_id,
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


async def verify(db: Database) -> Verdict:
    """Recompute every chain and every anchor (see the module docstring)."""
    async with db.read() as sql:
        anchors = await sql.fetch("SELECT day, digest, heads, audit_n FROM chain_anchors")
        wanted: dict[int, set[int]] = {}
        for anchor in anchors:
            for conv, seq in sql.unjson(anchor["heads"]).items():
                wanted.setdefault(int(conv), set()).add(int(seq))
        wanted_audit = {int(anchor["audit_n"]) for anchor in anchors}
        at_position: dict[tuple[int, int], bytes] = {}
        counted = {"conversations": 0, "messages": 0, "audit_entries": 0}

        def verdict(broken: str | None) -> Verdict:
            return Verdict(broken, anchors=len(anchors), **counted)

        for conv in await sql.fetch(
            "SELECT id, last_seq, chain_head FROM conversations ORDER BY id"
        ):
            found = await conversation_chain(sql, conv["id"])
            hashes, broken = _walk(found)
            if broken:
                return verdict(broken)
            counted["conversations"] += 1
            counted["messages"] += len(found)
            if len(found) != conv["last_seq"] or bytes(conv["chain_head"]) != (
                hashes[-1] if hashes else chain.GENESIS
            ):
                return verdict(f"conversation {conv['id']}: head does not match its last message")
            for seq in wanted.get(conv["id"], ()):
                if 0 < seq <= len(hashes):
                    at_position[(conv["id"], seq)] = hashes[seq - 1]

        previous, n = chain.GENESIS, 0
        audit_at: dict[int, bytes] = {0: chain.GENESIS}
        while True:
            page = await sql.fetch(
                "SELECT id, at, actor_id, action, object_type, object_id, prison_id, before,"
                " after, chain_n, hash FROM audit_entries WHERE chain_n > $1"
                " ORDER BY chain_n LIMIT $2",
                n,
                AUDIT_PAGE,
            )
            for row in page:
                n += 1
                if row["chain_n"] != n:
                    return verdict(f"audit chain position {n}: missing")
                link = chain.step(previous, _audit_form(sql, row))
                if link != bytes(row["hash"] or b""):
                    return verdict(
                        f"audit id {row['id']}: hash does not match its content and the"
                        " previous hash"
                    )
                previous = link
                if n in wanted_audit:
                    audit_at[n] = link
            counted["audit_entries"] = n
            if len(page) < AUDIT_PAGE:
                break
        unchained = await sql.fetchval(
            "SELECT min(id) FROM audit_entries WHERE chain_n IS NULL OR hash IS NULL"
        )
        if unchained is not None:
            return verdict(f"audit id {unchained}: not chained")
        head = await sql.fetchrow("SELECT n, head FROM audit_chain")
        stored = (0, chain.GENESIS) if head is None else (head["n"], bytes(head["head"]))
        if stored != (n, previous):
            return verdict("audit chain: head does not match its last entry")

        for anchor in sorted(anchors, key=lambda a: str(a["day"])):
            day = sql.day(anchor["day"])
            heads = []
            for conv, seq in sql.unjson(anchor["heads"]).items():
                covered = at_position.get((int(conv), int(seq)))
                if covered is None:
                    return verdict(f"anchor {day}: conversation {conv} seq {seq} is gone")
                heads.append((int(conv), covered))
            audit_head = audit_at.get(anchor["audit_n"])
            if audit_head is None:
                return verdict(f"anchor {day}: audit position {anchor['audit_n']} is gone")
            if chain.anchor_digest(heads, audit_head) != bytes(anchor["digest"]):
                return verdict(f"anchor {day}: digest does not match the chains")
    return verdict(None)
