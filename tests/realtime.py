"""Test helpers for live sockets: a reader that records every message it is given."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from channels.client import KinlineClient
from channels.protocol import ErrorFrame, MessageEvent, ServerFrame, Subscribed


class Reader:
    """Runs a client's event loop in the background and records what arrives."""

    def __init__(self, client: KinlineClient) -> None:
        self.client = client
        self.seqs: dict[int, list[int]] = defaultdict(list)
        self.messages: list[MessageEvent] = []
        self.frames: list[ServerFrame] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        await self.client.connect()
        self._task = asyncio.create_task(self._run())
        async with asyncio.timeout(10):
            await self.client.connected.wait()
        # the answer to hello: what others send from now on is live for this socket
        await self.until(lambda: any(isinstance(f, Subscribed) for f in self.frames))
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.close()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        async for frame in self.client.events():
            async with self._changed:
                self.frames.append(frame)
                if isinstance(frame, MessageEvent):
                    self.messages.append(frame)
                    self.seqs[frame.conv].append(frame.seq)
                self._changed.notify_all()

    async def until(self, predicate: object, timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` is true (re-checked on every frame)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)  # type: ignore[arg-type]

    async def until_seq(self, conv: int, count: int, timeout: float = 20.0) -> list[int]:
        await self.until(lambda: len(self.seqs[conv]) >= count, timeout)
        return self.seqs[conv]

    async def watch(self, conv: int, after: int | None = None) -> None:
        """Watch ``conv`` and wait for the ``subscribed`` that names it. A send on another
        socket is not ordered after this socket's watch: without the wait, a message sent
        "after" the watch can be committed before the watch joins and is then not live for it."""
        seen = len(self.frames)
        await self.client.watch(conv, after)
        await self.until(
            lambda: any(isinstance(f, Subscribed) and conv in f.convs for f in self.frames[seen:])
        )

    def errors(self) -> list[ErrorFrame]:
        return [f for f in self.frames if isinstance(f, ErrorFrame)]


def client(url: str, token: str, **options: object) -> KinlineClient:
    return KinlineClient(url, token=token, backoff_base=0.02, backoff_cap=0.5, **options)  # type: ignore[arg-type]
