"""How a batch of messages is appended: the pure parts the stores share.

SQLite: the store locks the database, reads the batch's ``last_seq`` and the messages already
stored under its ``(conversation, sender, cid)`` keys, asks ``plan`` which items are new and
which seq each gets, inserts ``plan.fresh`` and calls ``plan.finish``. PostgreSQL does the
same in one SQL function (``kinline_append``) and hands its rows to ``assemble``. Both give
the same answers: an item whose cid is stored (or repeated in the batch) gets the stored
message with ``created=False``; an item whose conversation does not exist gets ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from storage.base import Appended, Message, NewMessage

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
