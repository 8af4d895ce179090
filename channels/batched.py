"""One read for many concurrent lookups: what a reconnect storm asks of storage at once.

``Batched(fetch)`` turns ``await get(key)`` calls into calls of ``fetch(keys)``, one read for
every key asked meanwhile. Nothing waits to fill a batch: the first lookup starts a read on the
next turn of the loop (taking every lookup made until then), and the lookups made while a read
runs are taken together by the next one. A read always starts after the lookup it answers was
made, so it sees what a read of that key alone would have seen: a session revoked or a duty
flag changed before the lookup is never answered from an older read. Nothing is cached.

A failed read fails each lookup it carried, with its exception; the next lookups try again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batched(Generic[K, V]):
    def __init__(
        self,
        fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        missing: V,
        *,
        limit: int = 500,
    ) -> None:
        self._fetch = fetch
        self._missing = missing  # a key the read did not find
        self._limit = limit  # keys per read
        self._asked: dict[K, list[asyncio.Future[V]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        answer: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(key, []).append(answer)
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_all(), name="batched-read")
        return await answer

    async def _read_all(self) -> None:
        try:
            while self._asked:
                keys = list(self._asked)[: self._limit]
                batch = {key: self._asked.pop(key) for key in keys}
                try:
                    found = await self._fetch(keys)
                except Exception as exc:  # each lookup it carried fails with it
                    for answers in batch.values():
                        for answer in answers:
                            if not answer.done():
                                answer.set_exception(exc)
                    continue
                except BaseException:
                    for answers in (*batch.values(), *self._asked.values()):
                        for answer in answers:
                            answer.cancel()
                    self._asked.clear()
                    raise
                for key, answers in batch.items():
                    value = found.get(key, self._missing)
                    for answer in answers:
                        if not answer.done():  # its caller may have gone (cancelled)
                            answer.set_result(value)
        finally:
            self._reading = None
