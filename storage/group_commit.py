"""Group commit: concurrent appends share one transaction, each still acked after commit.

Every ``append`` waits for the commit of the batch that carried it, so "ack after commit" holds.
While ``max_inflight`` batches are being written, new appends queue and leave together in the
next batch: under load a transaction carries many messages instead of one, and a commit's
fsync is paid once per batch.

``max_inflight`` is 1 unless a caller knows better: batches then commit in queue order, so
messages queued in order get their seqs in that order (two batches in flight could take the
conversation's lock in either order).

Admission: when the oldest waiting append has waited longer than ``max_wait`` (the store is
not keeping up), or ``max_queued`` appends wait, ``append`` raises ``Overloaded`` at once
(callers answer ``rate_limited``). Past saturation, admitted messages keep a bounded latency
instead of joining a queue that grows for seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from storage.base import Appended, NewMessage, Store


class Overloaded(Exception):
    """The store is not keeping up; try again shortly."""


class GroupCommit:
    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 256,
        max_inflight: int = 1,
        max_queued: int = 4096,
        max_wait: float = 0.1,
        clock: Callable[[], float] | None = None,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._max_queued = max_queued
        self._max_wait = max_wait
        self._clock = clock
        self._on_batch = on_batch  # (size, seconds) of every committed batch, for metrics
        self._queue: deque[tuple[NewMessage, asyncio.Future[Appended | None], float]] = deque()
        self._inflight = 0

    async def append(self, item: NewMessage) -> Appended | None:
        """Commit ``item`` (in some batch); ``None`` if its conversation does not exist.
        Raises ``StoreUnavailable`` (nothing committed) or ``Overloaded`` (not attempted)."""
        return await self.submit(item)

    def submit(self, item: NewMessage) -> asyncio.Future[Appended | None]:
        """Queue ``item`` now (queue order is commit order) and return the future of its
        commit. Raises ``Overloaded`` at once, without queueing, when the store lags."""
        loop = asyncio.get_running_loop()
        now = (self._clock or loop.time)()
        if len(self._queue) >= self._max_queued or (
            self._queue and now - self._queue[0][2] > self._max_wait
        ):
            raise Overloaded
        future: asyncio.Future[Appended | None] = loop.create_future()
        self._queue.append((item, future, now))
        if self._inflight < self._max_inflight:
            self._inflight += 1
            loop.call_soon(self._launch)
        return future

    def _launch(self) -> None:
        task = asyncio.ensure_future(self._drain())
        task.add_done_callback(lambda t: None if t.cancelled() else t.exception())

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = [
                    self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))
                ]
                started = time.perf_counter()
                try:
                    results = await self._store.append_messages([item for item, _, _ in batch])
                except Exception as exc:
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                if self._on_batch is not None:
                    self._on_batch(len(batch), time.perf_counter() - started)
                for (_, future, _), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._inflight -= 1
