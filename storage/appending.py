"""How a batch of messages is appended: the pure part shared by both stores.

A store locks the batch's conversation rows, reads their ``last_seq`` and the messages already
stored under the batch's ``(conversation, sender, cid)`` keys, then asks ``plan`` which items are
new and which seq each gets. It inserts ``plan.fresh`` and calls ``plan.finish`` with the ids and
timestamps the database gave them. Keeping this here means the two stores cannot disagree on
idempotency or on seq assignment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from storage.base import Appended, Message, NewMessage

Key = tuple[int, int, str]


def key_of(item: NewMessage) -> Key:
    return (item.conversation_id, item.sender_id, item.cid)


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
            message = Message(
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
            self.results[index] = Appended(message, created=True)
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
