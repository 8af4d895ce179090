"""Rows -> records, shared by both stores: the same SELECTs, the same mapping.

The stores differ only in how a timestamp comes back (PostgreSQL: a datetime; SQLite:
integer microseconds) and how JSON does (decoded by asyncpg's codec; text in SQLite), so
each mapper takes those conversions as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from storage.base import AuditEntry, Conversation, FamilyLink, Message

MESSAGE_SELECT = """
SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.sender_role, u.name AS sender_name,
       m.cid, m.kind, m.body, m.created_at
FROM messages m JOIN users u ON u.id = m.sender_id
"""

LINK_SELECT = """
SELECT l.id, l.relative_id, l.prison_id, l.prison_claim, l.inmate_number, l.inmate_id,
       l.relationship, l.evidence, l.state, l.reason, l.decided_by, l.decided_at, l.created_at,
       u.name AS relative_name, u.phone AS relative_phone, u.id_number_last4
FROM family_links l JOIN users u ON u.id = l.relative_id
"""


class Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


When = Callable[[Any], datetime]


def same(value: Any) -> Any:
    return value


def message(row: Row, when: When) -> Message:
    return Message(
        row["id"],
        row["conversation_id"],
        row["seq"],
        row["sender_id"],
        row["sender_role"],
        row["sender_name"],
        row["cid"],
        row["kind"],
        row["body"],
        when(row["created_at"]),
    )


def conversation(row: Row, when: When) -> Conversation:
    return Conversation(
        row["id"],
        row["prison_id"],
        row["inmate_id"],
        row["relative_id"],
        row["state"],
        row["assigned_officer_id"],
        row["last_seq"],
        when(row["created_at"]),
    )


def audit(row: Row, when: When, decode: Callable[[Any], Any] = same) -> AuditEntry:
    return AuditEntry(
        row["id"],
        when(row["at"]),
        row["actor_id"],
        row["action"],
        row["object_type"],
        row["object_id"],
        row["prison_id"],
        decode(row["before"]),
        decode(row["after"]),
    )


def link(row: Row, when: When) -> FamilyLink:
    decided_at = row["decided_at"]
    return FamilyLink(
        row["id"],
        row["relative_id"],
        row["prison_id"],
        row["prison_claim"],
        row["inmate_number"],
        row["inmate_id"],
        row["relationship"],
        row["evidence"],
        row["state"],
        row["reason"],
        row["decided_by"],
        None if decided_at is None else when(decided_at),
        when(row["created_at"]),
        row["relative_name"],
        row["relative_phone"],
        row["id_number_last4"],
    )
