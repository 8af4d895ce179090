"""The hub's ordering guarantees, deterministically: two hubs on one memory bus stand for two
server processes, and a "lost" pub/sub message is a message stored but never published."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from channels.broker_memory import MemoryBroker, MemoryBus
from channels.events import conversation_topic, message_bytes
from channels.hub import Hub
from domain.records import Conversation, Message, NewMessage, User
from storage import accounts, conversations, prisons
from storage.sql import Database


@dataclass(eq=False)
class FakePeer:
    """Records the frames the hub writes (they are complete WebSocket frames)."""

    is_staff: bool = True
    closed: bool = False
    frames: list[dict[str, object]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def write(self, frame: bytes) -> None:
        header = 2 if frame[1] < 126 else 4 if frame[1] == 126 else 10
        self.frames.append(json.loads(frame[header:]))
        self.arrived.set()

    async def drain(self) -> None:
        return None

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.frames if f["type"] == "message"]  # type: ignore[misc]

    async def until(self, count: int) -> list[int]:
        async with asyncio.timeout(5):
            while len(self.seqs()) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.seqs()


@dataclass
class Two:
    a: Hub
    b: Hub
    store: Database
    conv: Conversation
    sender: User


@pytest.fixture
async def two(store: Database) -> AsyncIterator[Two]:
    prison = await prisons.add_prison(store, "GM", "Gaoming")
    sender = await accounts.add_user(store, "relative", "r", "Chen Mei", "x")
    inmate = await prisons.add_inmate(store, prison.id, "1", "I")
    conv = await conversations.open_conversation(store, sender.id, inmate.id)
    bus = MemoryBus()
    a = Hub(MemoryBroker(bus), store, reconcile_interval=3600)
    b = Hub(MemoryBroker(bus), store, reconcile_interval=3600)
    for hub in (a, b):
        await hub._broker.start()
        await hub.start()
    yield Two(a, b, store, conv, sender)
    for hub in (a, b):
        await hub.close()
        await hub._broker.close()


async def append(two: Two, n: int, kind: str = "text") -> Message:
    [done] = await two.store.append_messages(
        [
            NewMessage(
                two.conv.id,
                two.sender.id,
                "relative",
                f"c{n}",
                f"m{n}",
                kind,  # type: ignore[arg-type]
                sender_name="Chen Mei",
            )
        ]
    )
    assert done is not None
    return done.message


def publish(hub: Hub, message: Message) -> None:
    hub.publish(
        conversation_topic(message.conversation_id),
        message_bytes(message),
        seq=message.seq,
        audience_="s" if message.kind == "note" else "a",
    )


async def test_a_lost_message_is_fetched_from_storage_when_the_next_one_reveals_the_gap(
    two: Two,
) -> None:
    reader = FakePeer()
    await two.b.join(conversation_topic(two.conv.id), reader)
    publish(two.a, await append(two, 1))
    await append(two, 2)  # stored, but its publish was lost
    await append(two, 3)  # lost too
    publish(two.a, await append(two, 4))
    assert await reader.until(4) == [1, 2, 3, 4]
    assert [f["body"] for f in reader.frames] == ["m1", "m2", "m3", "m4"]


async def test_a_lost_last_message_is_found_by_reconciliation(two: Two) -> None:
    reader = FakePeer()
    await two.b.join(conversation_topic(two.conv.id), reader)
    publish(two.a, await append(two, 1))
    await reader.until(1)
    await append(two, 2)  # lost, and nothing follows it
    await two.b.reconcile()  # what the periodic check and a broker reconnect do
    assert await reader.until(2) == [1, 2]


async def test_duplicates_are_dropped_and_the_order_kept(two: Two) -> None:
    reader = FakePeer()
    await two.b.join(conversation_topic(two.conv.id), reader)
    first, second = await append(two, 1), await append(two, 2)
    for message in (first, second, first, second, first):
        publish(two.a, message)
    third = await append(two, 3)
    publish(two.a, third)
    assert await reader.until(3) == [1, 2, 3]
    await two.b.reconcile()
    publish(two.a, third)
    fourth = await append(two, 4)
    publish(two.a, fourth)
    assert await reader.until(4) == [1, 2, 3, 4]


async def test_joining_with_a_cursor_replays_then_streams_without_gap_or_repeat(two: Two) -> None:
    for n in range(1, 6):
        publish(two.a, await append(two, n))
    reader = FakePeer()
    await two.b.join(conversation_topic(two.conv.id), reader, cursor=2)
    for n in range(6, 9):
        publish(two.a, await append(two, n))
    assert await reader.until(6) == [3, 4, 5, 6, 7, 8]


async def test_notes_never_reach_a_relative_and_do_not_stall_its_stream(two: Two) -> None:
    relative, officer = FakePeer(is_staff=False), FakePeer(is_staff=True)
    for peer in (relative, officer):
        await two.b.join(conversation_topic(two.conv.id), peer)
    publish(two.a, await append(two, 1))
    publish(two.a, await append(two, 2, kind="note"))
    await append(two, 3, kind="note")  # lost: repaired from storage, still staff only
    publish(two.a, await append(two, 4))
    assert await officer.until(4) == [1, 2, 3, 4]
    assert await relative.until(2) == [1, 4]
    assert all(f["kind"] != "note" for f in relative.frames)
