"""Graceful shutdown of the gateway: no frame is cut half-handled.

While running, every client frame is handled inside :meth:`Draining.frame`, which counts it.
:meth:`Draining.shutdown` first refuses new sockets and new frames (``closing``: a frame not
started is not acked, so the client sends it again after reconnecting), then waits, bounded
by ``timeout``, for the frames in flight and for their sends to be committed and acked, and
only then closes every socket with 1012 so clients reconnect (to another worker) and resume
from their cursors. A send still unanswered at the deadline is logged; its client re-sends it
with the same cid, which the store deduplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

from channels.protocol import CloseCode
from server.sockets import Sockets

log = logging.getLogger(__name__)


class Draining:
    def __init__(self) -> None:
        self.closing = False
        self._inflight = 0  # frames being handled
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def frame(self) -> Iterator[None]:
        """Count one frame as in flight while it is handled."""
        self._inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()

    async def shutdown(
        self, sends_idle: Callable[[], Awaitable[None]], sockets: Sockets, timeout: float = 5.0
    ) -> None:
        """Refuse new sockets and frames, let those in flight finish (``sends_idle``: their
        sends committed and acked), then close every socket with 1012."""
        self.closing = True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
                await sends_idle()
        except TimeoutError:
            log.warning("shutdown: sends still unanswered after %.0f s", timeout)
        await sockets.close_all(CloseCode.RESTARTING, "server restarting")
