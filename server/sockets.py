"""The sockets this process holds, by user: the per-user cap, the control plane's lookups,
rebalancing and shutdown all read them here."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from channels.protocol import CloseCode
from server.connection import Connection


class Sockets:
    def __init__(self) -> None:
        # A tuple per user, not a set: most users hold one socket, and a set costs 216 bytes
        # where a tuple of one costs 48 (the per-user cap bounds how long one gets).
        self._by_user: dict[int, tuple[Connection, ...]] = {}

    def add(self, conn: Connection) -> None:
        group = self._by_user.get(conn.user_id, ())
        if conn not in group:
            self._by_user[conn.user_id] = (*group, conn)

    def remove(self, conn: Connection, user_id: int) -> None:
        group = self._by_user.get(user_id)
        if group is not None and conn in group:
            rest = tuple(other for other in group if other is not conn)
            if rest:
                self._by_user[user_id] = rest
            else:
                del self._by_user[user_id]

    def count_of(self, user_id: int) -> int:
        group = self._by_user.get(user_id)
        return len(group) if group else 0

    def user_ids(self) -> set[int]:
        """The users with a socket on this process."""
        return set(self._by_user)

    def of_user(self, user_id: int) -> list[Connection]:
        return list(self._by_user.get(user_id, ()))

    def all(self) -> list[Connection]:
        return [conn for group in self._by_user.values() for conn in group]

    @property
    def count(self) -> int:
        """Sockets open on this process."""
        return sum(len(group) for group in self._by_user.values())

    def shed(self, count: int, key: Callable[[Connection], int] | None = None) -> int:
        """Close up to ``count`` open sockets with 1012 (reconnect and resume, possibly on
        another process); those with the lowest ``key`` first (e.g. fewest sends awaiting
        their ack), at random among equals. Returns how many were closed."""
        conns = [conn for conn in self.all() if not conn.closed]
        if count <= 0 or not conns:
            return 0
        random.shuffle(conns)
        if key is not None:
            conns.sort(key=key)  # stable: still random among equals
        for conn in conns[:count]:
            conn.kick(CloseCode.RESTARTING, "rebalancing: reconnect and resume")
        return min(count, len(conns))

    async def close_all(self, code: int, reason: str) -> None:
        """Close every socket with ``code`` (the close handshake, not a cut)."""
        await asyncio.gather(
            *(conn.ws.close(code=code, message=reason.encode()) for conn in self.all()),
            return_exceptions=True,
        )
