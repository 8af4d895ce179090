"""The peer's tables, next to Kinline's in the bench's throwaway database: one row per
conversation holding its last ``seq`` (the row that is locked), and the messages, keyed by
(conversation, seq). The conversations are Kinline's own ids, so one seeding serves both."""

from __future__ import annotations

import asyncpg

TABLES = """
CREATE TABLE peer_conversations (
    id  bigint PRIMARY KEY,
    seq bigint NOT NULL DEFAULT 0
);
CREATE TABLE peer_messages (
    conversation_id bigint NOT NULL,
    seq             bigint NOT NULL,
    sender          bigint NOT NULL,
    body            text NOT NULL,
    client_id       text NOT NULL,
    at              timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
"""

SEED = "INSERT INTO peer_conversations (id) SELECT id FROM conversations"


async def create(dsn: str) -> int:
    """Create the peer's tables and a row for each of Kinline's conversations; return how many."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction():
            await conn.execute(TABLES)
            status: str = await conn.execute(SEED)
    finally:
        await conn.close()
    return int(status.rsplit(" ", 1)[-1])
