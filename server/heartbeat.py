"""Heartbeats: one sweep over every socket of the process, instead of timers per socket.

aiohttp's own heartbeat (``WebSocketResponse(heartbeat=...)``) keeps a timer handle per
socket, rescheduled on every read, and a second one while a ping is unanswered. Here one
task ticks every ``heartbeat / 2`` seconds over every open socket (:func:`sweep`):

- a socket heard from since the last tick (any frame, pongs included), or busy handling a
  frame of its own, is left alone;
- one not heard for a whole tick is sent a ping;
- one pinged at the last tick and still not heard is dead: its connection is cut (no close
  frame; the peer is not there to take it), and its handler ends as on any lost connection.

So an idle socket is pinged every ``heartbeat`` seconds and has at least ``heartbeat / 2``
to answer, and a peer gone silent is cut between ``heartbeat`` and ``1.5 * heartbeat``
after the last thing it sent (aiohttp's bound is ``1.5 * heartbeat`` too). The socket's
handler reads the frames (``autoping`` off: it answers pings itself), so while it is busy
handling a frame, a pong waits unread in aiohttp's queue: hence "busy is alive".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Protocol

log = logging.getLogger(__name__)


class Beating(Protocol):
    """What the sweep needs of a socket (``server.connection.Connection``)."""

    heard: bool  # something arrived since the last tick
    pinged: bool  # pinged at the last tick, no answer since
    busy: bool  # its handler is handling one of its frames

    @property
    def closed(self) -> bool: ...

    def ping(self) -> None: ...

    def cut(self) -> None: ...


def sweep(sockets: Iterable[Beating]) -> tuple[int, int]:
    """One tick over ``sockets``; returns how many were pinged and how many cut."""
    pinged = cut = 0
    for sock in sockets:
        if sock.closed:
            continue
        if sock.heard or sock.busy:
            sock.heard = sock.pinged = False
        elif sock.pinged:
            sock.cut()
            cut += 1
        else:
            sock.pinged = True
            sock.ping()
            pinged += 1
    return pinged, cut


async def _run(interval: float, sockets: Callable[[], Iterable[Beating]]) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            _, cut = sweep(sockets())
        except Exception:  # a bug: say so, keep the heartbeats going
            log.exception("heartbeat sweep failed")
            continue
        if cut:
            log.info("heartbeat: cut sockets whose peer stopped answering", extra={"cut": cut})


@contextlib.asynccontextmanager
async def beating(
    heartbeat: float, sockets: Callable[[], Iterable[Beating]]
) -> AsyncIterator[None]:
    """Sweep ``sockets()`` every ``heartbeat / 2`` seconds for the life of the context."""
    task = asyncio.create_task(_run(heartbeat / 2, sockets))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
