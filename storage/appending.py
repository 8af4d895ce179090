"""How a batch of messages is appended: the pure parts the stores share.

SQLite: the store locks the database, reads the batch's ``last_seq`` and the messages already
stored under its ``(conversation, sender, cid)`` keys, asks ``plan`` which items are new and
which seq each gets, inserts ``plan.fresh`` and calls ``plan.finish``. PostgreSQL does the
same in one SQL function (``kinline_append``) and hands its rows to ``assemble``. Both give
the same answers: an item whose cid is stored (or repeated in the batch) gets the stored
message with ``created=False``; an item whose conversation does not exist gets ``None``.

Both stores also read each conversation's ``(state, cycle)`` before the batch (under the
same lock), and ``life_cycle`` walks the new messages in seq order applying the rule the
migration-0003 triggers apply in the database, so each new message carries the state it was
appended in (``prev_state``) and its cycle: the send path announces a cycle start from it
without another round trip. The triggers see the rows in the same (seq) order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from storage.base import Appended, ConversationState, Message, NewMessage

Key = tuple[int, int, str]


def key_of(item: NewMessage) -> Key:
    return (item.conversation_id, item.sender_id, item.cid)


def stored(item: NewMessage, message_id: int, seq: int, created_at: datetime) -> Message:
    """The message ``item`` became, with what the database gave it."""
    return Message(
        message_id,
        item.conversation_id,
        seq,
        item.sender_id,
        item.sender_role,
        item.sender_name,
        item.cid,
        item.kind,
        item.body,
        created_at,
    )


@dataclass
class AppendPlan:
    items: Sequence[NewMessage]
    fresh: list[tuple[int, NewMessage, int]] = field(default_factory=list)  # (index, item, seq)
    last_seqs: dict[int, int] = field(default_factory=dict)  # conversations whose seq moved
    results: list[Appended | None] = field(default_factory=list)
    repeats: list[tuple[int, int]] = field(default_factory=list)  # (index, index of first)

    def finish(
        self, inserted: Mapping[tuple[int, int], tuple[int, datetime]]
    ) -> list[Appended | None]:
        """Fill in the results from ``(conversation, seq) -> (id, created_at)`` of the rows
        inserted (row order is not relied upon)."""
        for index, item, seq in self.fresh:
            message_id, created_at = inserted[(item.conversation_id, seq)]
            self.results[index] = Appended(stored(item, message_id, seq, created_at), True)
        for index, first in self.repeats:
            done = self.results[first]
            self.results[index] = None if done is None else Appended(done.message, created=False)
        return self.results


def plan(
    items: Sequence[NewMessage], last_seqs: Mapping[int, int], stored: Mapping[Key, Message]
) -> AppendPlan:
    """``last_seqs`` holds only conversations that exist (others get ``None`` results)."""
    result = AppendPlan(items)
    first_index: dict[Key, int] = {}
    seqs = dict(last_seqs)
    for index, item in enumerate(items):
        key = key_of(item)
        result.results.append(None)
        if item.conversation_id not in seqs:
            continue
        if key in stored:
            result.results[index] = Appended(stored[key], created=False)
        elif key in first_index:
            result.repeats.append((index, first_index[key]))
        else:
            first_index[key] = index
            seqs[item.conversation_id] += 1
            result.fresh.append((index, item, seqs[item.conversation_id]))
            result.last_seqs[item.conversation_id] = seqs[item.conversation_id]
    return result


@dataclass(frozen=True)
class Stored:
    id: int
    seq: int
    created_at: datetime
    created: bool


def assemble(items: Sequence[NewMessage], found: Mapping[int, Stored]) -> list[Appended | None]:
    """Results from ``found`` (item index -> its row); an item repeated later in the batch
    has no row of its own and shares the first one's, as a repeat."""
    by_key = {key_of(items[index]): row for index, row in found.items()}
    results: list[Appended | None] = []
    for index, item in enumerate(items):
        row = found.get(index)
        repeat = row is None
        row = row or by_key.get(key_of(item))
        if row is None:
            results.append(None)
            continue
        message = stored(item, row.id, row.seq, row.created_at)
        results.append(Appended(message, created=row.created and not repeat))
    return results


CYCLE_STARTERS: frozenset[str] = frozenset({"new", "resolved"})


def starts_cycle(message: Message, state: ConversationState) -> bool:
    """Whether appending ``message`` in ``state`` starts a cycle (migration 0003): a
    relative's text while the thread is new or resolved."""
    return message.kind == "text" and message.sender_role == "relative" and state in CYCLE_STARTERS


def claims(message: Message, state: ConversationState) -> bool:
    """Whether appending ``message`` in ``state`` claims the thread (migration 0003): an
    officer's text while it waits (a waiting thread is held by nobody)."""
    return message.kind == "text" and message.sender_role == "officer" and state == "waiting"


def life_cycle(
    results: list[Appended | None], before: Mapping[int, tuple[ConversationState, int]]
) -> list[Appended | None]:
    """``results`` with ``prev_state`` and ``cycle`` on each new message. ``before`` is each
    conversation's ``(state, cycle)`` before the batch; results are in batch order, which is
    seq order within a conversation."""
    now = dict(before)
    out: list[Appended | None] = []
    for result in results:
        if result is None or not result.created or result.message.conversation_id not in now:
            out.append(result)
            continue
        conv = result.message.conversation_id
        state, cycle = now[conv]
        if starts_cycle(result.message, state):
            now[conv] = ("waiting", cycle + 1)
        elif claims(result.message, state):
            now[conv] = ("active", cycle)
        out.append(msgspec.structs.replace(result, prev_state=state, cycle=now[conv][1]))
    return out
