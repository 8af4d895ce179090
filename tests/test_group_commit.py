"""Group commit: batching under load, ack after commit, bounded admission."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storage.base import Appended, NewMessage, Store, StoreUnavailable
from storage.group_commit import GroupCommit, Overloaded


class GatedStore:
    """A store whose appends wait until the test opens the gate."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.gate = asyncio.Event()
        self.calls: list[int] = []
        self.fail = False

    async def append_messages(self, items: Sequence[NewMessage]) -> list[Appended | None]:
        self.calls.append(len(items))
        await self.gate.wait()
        if self.fail:
            raise StoreUnavailable("down")
        return await self.store.append_messages(items)


async def _conv(store: Store) -> tuple[int, int]:
    prison = await store.add_prison("GM", "Gaoming")
    relative = await store.add_user("relative", "r", "R", "x")
    inmate = await store.add_inmate(prison.id, "1", "I")
    return (await store.open_conversation(relative.id, inmate.id)).id, relative.id


async def test_concurrent_appends_share_batches_and_keep_their_order(store: Store) -> None:
    conv, sender = await _conv(store)
    gated = GatedStore(store)
    commit = GroupCommit(gated, max_inflight=1)  # type: ignore[arg-type]

    def send(n: int) -> asyncio.Task[Appended | None]:
        return asyncio.create_task(
            commit.append(NewMessage(conv, sender, "relative", f"c{n}", "b"))
        )

    sends = [send(0)]
    while not gated.calls:
        await asyncio.sleep(0)  # let the first batch leave (no timing involved)
    sends += [send(n) for n in range(1, 50)]  # arrive while it is being written
    for _ in range(10):
        await asyncio.sleep(0)
    assert not any(s.done() for s in sends)  # nothing is acked before its commit
    gated.gate.set()
    results = await asyncio.gather(*sends)
    assert [r.message.seq for r in results if r] == list(range(1, 51))
    assert gated.calls == [1, 49]  # the 49 waiting ones left together, in one transaction


async def test_a_store_failure_fails_the_whole_batch_and_nothing_is_half_acked(
    store: Store,
) -> None:
    conv, sender = await _conv(store)
    gated = GatedStore(store)
    gated.fail = True
    gated.gate.set()
    commit = GroupCommit(gated)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable):
        await commit.append(NewMessage(conv, sender, "relative", "c", "b"))
    assert await store.messages(conv) == []


async def test_appends_are_refused_when_the_oldest_has_waited_too_long(store: Store) -> None:
    conv, sender = await _conv(store)
    gated = GatedStore(store)
    now = [0.0]
    commit = GroupCommit(gated, max_inflight=1, max_wait=0.1, clock=lambda: now[0])  # type: ignore[arg-type]

    def send(cid: str) -> asyncio.Task[Appended | None]:
        return asyncio.create_task(commit.append(NewMessage(conv, sender, "relative", cid, "b")))

    first = send("a")
    while not gated.calls:
        await asyncio.sleep(0)  # "a" is being written and the store is stuck on it
    second = send("b")
    await asyncio.sleep(0)  # "b" waits in the queue since t=0
    now[0] = 0.05
    third = send("c")  # the oldest waited 50 ms: still admitted
    await asyncio.sleep(0)
    now[0] = 0.2
    with pytest.raises(Overloaded):  # the oldest waited 200 ms: refused at once
        await commit.append(NewMessage(conv, sender, "relative", "d", "b"))
    gated.gate.set()
    done = await asyncio.gather(first, second, third)
    assert [d.message.seq for d in done if d] == [1, 2, 3]
    assert {m.cid for m in await store.messages(conv)} == {"a", "b", "c"}
