"""Login throttling: failed attempts per (account, client) and per client.

Each key keeps the times of its recent failures (a sliding window). At ``limit`` failures the
key is refused until the oldest one leaves the window; the caller answers 429 with that many
seconds in ``Retry-After``. Unknown logins are counted like known ones, so the answer never
says whether an account exists. A success clears that client's count for the account, not
the client's own count (one valid account must not let a client keep guessing others).

Why not per account alone: ten wrong passwords from anyone used to lock ``officer.chen`` out
for 15 minutes even with the right one; a client that has not failed is now never refused
because another one did. The client is its address as ``server.clients.address`` finds it
(behind trusted proxies, the real one: otherwise every user behind the proxy would share it).

Trade-off: the counts live in this process. With N workers an attacker gets at most N times
the limit, still bounded; sharing them (Redis) is the next step if that matters.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

ACCOUNT_LIMIT = 5  # failures per account per window
ADDRESS_LIMIT = 20  # failures per client address per window
WINDOW = 15 * 60.0  # seconds
MAX_KEYS = 100_000  # memory bound: the oldest keys are forgotten past it


class FailureWindow:
    def __init__(
        self,
        limit: int,
        window: float = WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        failures = self._recent(key)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[-self.limit] + self.window - self._clock())

    def failed(self, key: str) -> None:
        failures = self._recent(key)
        if failures is None:
            if len(self._failures) >= self._max_keys:
                del self._failures[next(iter(self._failures))]
            failures = self._failures[key] = deque(maxlen=max(self.limit, 1))
        failures.append(self._clock())

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)


class LoginThrottle:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_account = FailureWindow(ACCOUNT_LIMIT, clock=clock)  # per (account, client)
        self.per_address = FailureWindow(ADDRESS_LIMIT, clock=clock)

    @staticmethod
    def _key(login: str, address: str) -> str:
        return f"{login.strip().lower()}|{address}"

    def retry_after(self, login: str, address: str) -> int:
        """Whole seconds to wait (0: go ahead)."""
        wait = max(
            self.per_account.retry_after(self._key(login, address)),
            self.per_address.retry_after(address),
        )
        return math.ceil(wait)

    def failed(self, login: str, address: str) -> None:
        self.per_account.failed(self._key(login, address))
        self.per_address.failed(address)

    def succeeded(self, login: str, address: str) -> None:
        self.per_account.reset(self._key(login, address))
