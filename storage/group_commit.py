"""Group commit: concurrent appends share transactions, each still acked after its commit.

Every ``append`` waits for the commit of the batch that carried it, so "ack after commit" holds.
Appends queue per conversation ("lanes"); a batch takes the waiting items of the conversations
that have nothing in flight, in the order they became ready, up to ``max_batch`` items. Under
load a transaction carries many messages instead of one, and a commit's fsync is paid once per
batch.

Guarantees
----------
* **Order within a conversation.** A conversation has at most one batch in flight, and its
  items leave in queue order, so queue order is commit order is seq order, and their futures
  are resolved (acked) in that order.
* **No head-of-line blocking across conversations.** Up to ``max_inflight`` batches are
  written at once, each over its own connection; a batch that has not committed after
  ``stall_after`` seconds (a locked row, a slow commit) stops counting against that limit, so
  other conversations go on committing in other batches (``max_open`` bounds all batches open
  at once, stalled or not: each holds a connection). Trade-off: items that already left in the
  same batch as a stuck conversation wait with it; the next ones do not.
* **One item's refusal fails only that item.** When a batch fails with anything but
  "unavailable" (the database refused some item: ``storage.errors.Unstorable``, or a bug),
  it is split in halves and each half tried again (in order), down to the offending item,
  which alone gets the error. A batch of n items with one bad item costs about 2 log2(n)
  extra statements. "Unavailable" (``is_unavailable``) fails the whole batch: nothing was
  committed, and trying again at once would not help.
* **Admission by drain time.** ``append`` raises ``Overloaded`` at once (callers answer
  ``rate_limited`` with its ``retry_after``) only when the server really is behind: when the
  queue, at the recent commit cost per item, would take longer than ``max_drain`` seconds to
  commit, or when the item's own conversation is that far behind (its batch in flight that
  long, or its lane that deep), or ``max_queued`` items wait. A burst at light load is never
  refused: the cost per item is measured on commits, not on arrivals.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.records import Appended, NewMessage
from storage.errors import StoreUnavailable
from storage.sql import Database


class Overloaded(Exception):
    """The store is not keeping up; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"the store is not keeping up; retry in {retry_after:.1f} s")
        self.retry_after = retry_after


_Entry = tuple[NewMessage, "asyncio.Future[Appended | None]"]


@dataclass
class _Lane:
    """One conversation's queue, and since when its batch has been in flight."""

    queue: deque[_Entry] = field(default_factory=deque)
    busy_since: float | None = None


@dataclass
class _Batch:
    entries: list[_Entry]
    counted: bool = True  # holds one of the ``max_inflight`` slots (until it stalls)


def _store_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, StoreUnavailable)


class GroupCommit:
    def __init__(
        self,
        store: Database,
        *,
        max_batch: int = 256,
        max_inflight: int = 4,
        max_open: int = 6,
        stall_after: float = 0.25,
        max_queued: int = 4096,
        max_drain: float = 1.0,
        clock: Callable[[], float] | None = None,
        on_batch: Callable[[int, float], None] | None = None,
        is_unavailable: Callable[[BaseException], bool] = _store_unavailable,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._max_open = max(max_open, max_inflight)
        self._stall_after = stall_after
        self._max_queued = max_queued
        self._max_drain = max_drain
        self._clock = clock
        self._on_batch = on_batch  # (size, seconds) of every committed batch, for metrics
        self._is_unavailable = is_unavailable
        self._lanes: dict[int, _Lane] = {}
        self._ready: deque[int] = deque()  # conversations with items queued and none in flight
        self._queued = 0
        self._counted = 0  # batches in flight holding a slot
        self._open = 0  # batches in flight, stalled or not
        self._cost = 0.0  # recent seconds of commit per item (0: nothing measured yet)
        self._kick_scheduled = False

    async def append(self, item: NewMessage) -> Appended | None:
        """Commit ``item`` (in some batch); ``None`` if its conversation does not exist.
        Raises ``StoreUnavailable`` (nothing committed), ``Overloaded`` (not attempted) or the
        error the store refused ``item`` with (nothing of it committed)."""
        return await self.submit(item)

    def submit(self, item: NewMessage) -> asyncio.Future[Appended | None]:
        """Queue ``item`` now (queue order is commit order within its conversation) and
        return the future of its commit. Raises ``Overloaded`` at once, without queueing,
        when the server is behind."""
        loop = asyncio.get_running_loop()
        now = (self._clock or loop.time)()
        lane = self._lanes.get(item.conversation_id)
        behind = self._behind(lane, now)
        if self._queued >= self._max_queued or behind > self._max_drain:
            raise Overloaded(min(max(behind, 0.1), 5.0))
        if lane is None:
            lane = self._lanes[item.conversation_id] = _Lane()
        future: asyncio.Future[Appended | None] = loop.create_future()
        if not lane.queue and lane.busy_since is None:
            self._ready.append(item.conversation_id)
        lane.queue.append((item, future))
        self._queued += 1
        if not self._kick_scheduled:
            self._kick_scheduled = True
            loop.call_soon(self._kick)  # appends of this loop iteration leave together
        return future

    def _behind(self, lane: _Lane | None, now: float) -> float:
        """Seconds until a new item would commit, by the recent cost per item: the larger of
        the whole queue's drain time and that of the item's own conversation."""
        total = self._queued * self._cost / self._max_inflight
        if lane is None:
            return total
        own = len(lane.queue) * self._cost
        if lane.busy_since is not None:
            own += now - lane.busy_since
        return max(total, own)

    def _kick(self) -> None:
        """Start batches while a slot is free and some conversation is ready."""
        self._kick_scheduled = False
        loop = asyncio.get_running_loop()
        while self._ready and self._counted < self._max_inflight and self._open < self._max_open:
            entries: list[_Entry] = []
            now = (self._clock or loop.time)()
            while self._ready and len(entries) < self._max_batch:
                lane = self._lanes[self._ready.popleft()]
                while lane.queue and len(entries) < self._max_batch:
                    entries.append(lane.queue.popleft())
                lane.busy_since = now
            self._queued -= len(entries)
            batch = _Batch(entries)
            self._counted += 1
            self._open += 1
            stall = loop.call_later(self._stall_after, self._stalled, batch)
            task = asyncio.ensure_future(self._write(batch, stall))
            task.add_done_callback(lambda t: None if t.cancelled() else t.exception())

    def _stalled(self, batch: _Batch) -> None:
        """A batch slow to commit gives up its slot (not its connection)."""
        if batch.counted:
            batch.counted = False
            self._counted -= 1
            self._kick()

    async def _write(self, batch: _Batch, stall: asyncio.TimerHandle) -> None:
        started = time.perf_counter()
        try:
            committed, _ = await self._commit(batch.entries)
        except BaseException as exc:  # cancelled (shutdown): nothing of it is acked
            self._fail(batch.entries, StoreUnavailable(f"append abandoned: {exc!r}"))
            raise
        finally:
            stall.cancel()
            if batch.counted:
                self._counted -= 1
            self._open -= 1
            self._release(batch.entries)
        elapsed = time.perf_counter() - started
        if committed:
            cost = elapsed / len(batch.entries)
            self._cost = cost if self._cost == 0.0 else 0.8 * self._cost + 0.2 * cost
            if self._on_batch is not None:
                self._on_batch(committed, elapsed)

    def _release(self, entries: list[_Entry]) -> None:
        """The batch's conversations may send their next batch; start it."""
        for conv in dict.fromkeys(item.conversation_id for item, _ in entries):
            lane = self._lanes[conv]
            lane.busy_since = None
            if lane.queue:
                self._ready.append(conv)
            else:
                del self._lanes[conv]
        if self._ready and not self._kick_scheduled:
            self._kick_scheduled = True
            asyncio.get_running_loop().call_soon(self._kick)

    async def _commit(self, entries: list[_Entry]) -> tuple[int, BaseException | None]:
        """Append ``entries`` and resolve their futures; split on a refusal (see the module
        docstring). Returns how many items were committed, and the "unavailable" error that
        stopped it, if one did (then nothing after the failed part was tried)."""
        try:
            results = await self._store.append_messages([item for item, _ in entries])
        except Exception as exc:
            if self._is_unavailable(exc):
                self._fail(entries, exc)
                return 0, exc
            if len(entries) == 1:
                self._fail(entries, exc)
                return 0, None
            half = len(entries) // 2
            done, down = await self._commit(entries[:half])
            if down is not None:  # the store went away meanwhile: the rest would not commit
                self._fail(entries[half:], down)
                return done, down
            more, down = await self._commit(entries[half:])
            return done + more, down
        for (_, future), result in zip(entries, results, strict=True):
            if not future.done():
                future.set_result(result)
        return len(entries), None

    @staticmethod
    def _fail(entries: list[_Entry], exc: BaseException) -> None:
        for _, future in entries:
            if not future.done():
                future.set_exception(exc)
