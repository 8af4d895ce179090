"""Concurrent lookups read together, never from a read older than the lookup."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from channels.batched import Batched


class Store:
    """A key -> value table whose reads can be held open, recording each read's keys."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.reads: list[list[str]] = []
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()
        self.fail: Exception | None = None

    async def fetch(self, keys: Sequence[str]) -> Mapping[str, int]:
        self.reads.append(list(keys))
        snapshot = {k: self.values[k] for k in keys if k in self.values}
        self.reading.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        return snapshot


async def test_lookups_made_at_once_are_one_read() -> None:
    store = Store()
    store.values = {"a": 1, "b": 2}
    batched = Batched(store.fetch, -1)
    got = await asyncio.gather(*(batched.get(k) for k in ["a", "b", "a", "zz"]))
    assert got == [1, 2, 1, -1]  # a key asked twice gets its value twice; unknown: missing
    assert store.reads == [["a", "b", "zz"]]


async def test_a_lookup_made_during_a_read_waits_for_a_newer_one() -> None:
    store = Store()
    store.values = {"session": 1}
    store.hold = asyncio.Event()
    batched = Batched(store.fetch, -1)
    first = asyncio.create_task(batched.get("session"))
    await store.reading.wait()
    del store.values["session"]  # revoked after the first read began
    second = asyncio.create_task(batched.get("session"))
    third = asyncio.create_task(batched.get("session"))
    store.hold.set()
    assert await first == 1
    assert await second == -1 and await third == -1  # never answered by the older read
    assert store.reads == [["session"], ["session"]]  # the two later ones shared one read


async def test_a_failed_read_fails_its_lookups_and_the_next_read_succeeds() -> None:
    store = Store()
    store.values = {"a": 1}
    store.fail = ConnectionError("storage down")
    batched = Batched(store.fetch, -1)
    results = await asyncio.gather(batched.get("a"), batched.get("b"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    store.fail = None
    assert await batched.get("a") == 1


async def test_a_cancelled_lookup_leaves_the_others_answered() -> None:
    store = Store()
    store.values = {"a": 1, "b": 2}
    store.hold = asyncio.Event()
    batched = Batched(store.fetch, -1)
    gone = asyncio.create_task(batched.get("a"))
    kept = asyncio.create_task(batched.get("b"))
    await store.reading.wait()
    gone.cancel()
    store.hold.set()
    assert await kept == 2
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_read_takes_at_most_limit_keys() -> None:
    store = Store()
    store.values = {str(i): i for i in range(5)}
    batched = Batched(store.fetch, -1, limit=2)
    assert await asyncio.gather(*(batched.get(str(i)) for i in range(5))) == list(range(5))
    assert store.reads == [["0", "1"], ["2", "3"], ["4"]]
