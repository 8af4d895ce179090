"""Group commit: concurrent appends share one transaction, each still acked after commit.

Every ``append`` waits for the commit of the batch that carried it, so "ack after commit" holds.
While ``max_inflight`` batches are being written, new appends queue and leave together in the
next batch: under load a transaction carries many messages instead of one, and a commit's
fsync is paid once per batch. At most ``max_queued`` appends wait; past that ``append`` raises
``Overloaded`` at once, so latency for admitted messages stays bounded instead of a queue
growing without end (callers answer ``rate_limited``).
"""

from __future__ import annotations

import asyncio

from storage.base import Appended, NewMessage, Store


class Overloaded(Exception):
    """Too many appends are already waiting; try again shortly."""


class GroupCommit:
    def __init__(
        self, store: Store, *, max_batch: int = 256, max_inflight: int = 2, max_queued: int = 4096
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._max_queued = max_queued
        self._queue: list[tuple[NewMessage, asyncio.Future[Appended | None]]] = []
        self._inflight = 0
        self.batches = 0  # counters for the benchmark and tests
        self.appended = 0

    async def append(self, item: NewMessage) -> Appended | None:
        """Commit ``item`` (in some batch); ``None`` if its conversation does not exist.
        Raises ``StoreUnavailable`` (nothing committed) or ``Overloaded``."""
        if len(self._queue) >= self._max_queued:
            raise Overloaded
        future: asyncio.Future[Appended | None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._inflight < self._max_inflight:
            self._inflight += 1
            asyncio.get_running_loop().call_soon(self._launch)
        return await future

    def _launch(self) -> None:
        task = asyncio.ensure_future(self._drain())
        task.add_done_callback(lambda t: None if t.cancelled() else t.exception())

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    results = await self._store.append_messages([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                self.appended += len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._inflight -= 1
