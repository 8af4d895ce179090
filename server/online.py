"""Which relatives have the web app open (a socket on some server process).

The outbox tells a relative of an answer only when it is not connected (it sees the answer
live otherwise). Each process heartbeats, with a TTL, the relatives it holds sockets of,
through the same ``Presence`` store as the duty roster (Redis across processes, memory in one),
under a namespace of its own; it says so at once when a relative connects and when its last
local socket closes. A process that dies stops counting its relatives after one TTL: until
then, a notification for them waits rather than being sent (``connected`` is asked again on
the next attempt). A presence store that cannot answer counts as "not connected": a
notification too many beats an answer never told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from channels.broker import BrokerUnavailable
from channels.presence import Presence

log = logging.getLogger(__name__)

NAMESPACE = 0  # one set for every relative (Presence is keyed by prison for the roster)


class Online:
    def __init__(
        self,
        presence: Presence,
        local: Callable[[], set[int]],
        *,
        ttl: float,
    ) -> None:
        self._presence = presence
        self._local = local  # the relatives with a socket on this process
        self._ttl = ttl
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_forever(), name="online-relatives")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._pending):
            task.cancel()
        await self._presence.close()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def joined(self, user_id: int) -> None:
        self._spawn(self._quietly(self._presence.heartbeat(NAMESPACE, user_id, self._ttl)))

    def left(self, user_id: int) -> None:
        """A socket of ``user_id`` closed here; forget it if it was the last one here."""
        if user_id not in self._local():
            self._spawn(self._quietly(self._presence.leave(NAMESPACE, user_id)))

    async def connected(self, user_id: int) -> bool:
        if user_id in self._local():
            return True
        try:
            return user_id in await self._presence.present(NAMESPACE)
        except BrokerUnavailable:
            return False

    @staticmethod
    async def _quietly(call: object) -> None:
        try:
            await call  # type: ignore[misc]
        except BrokerUnavailable as exc:
            log.warning("relative presence not updated: %s", exc)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            for user_id in self._local():
                await self._quietly(self._presence.heartbeat(NAMESPACE, user_id, self._ttl))
