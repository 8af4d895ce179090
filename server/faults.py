"""Storage faults, classified and logged in one place for every server path.

``unavailable(exc)`` says whether an exception means "the database cannot do this now" (it is
down or unreachable, out of connection slots, timed out, shutting down, busy with another
operation): the send path answers those ``error {code: unavailable}``, HTTP answers 503, the
``/ws`` handshake 503. Everything else is a bug or a refusal and keeps its own answer.
The storage adaptors sort every driver failure of that kind into ``StoreUnavailable`` (see
``storage/errors.py``), so this is a type test, not a reading of error codes.

``STORAGE`` logs an outage once per episode, not once per failed frame or request: the first
failure logs a warning with the reason and no traceback (an outage is expected, not a bug);
further failures are counted, not logged; the first success after it (a commit, a readiness
check) logs the recovery with the count. A failure after ``quiet`` seconds without one starts a
new episode even if no success was seen in between (a process with no traffic meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from storage import postgres
from storage.errors import StoreUnavailable

log = logging.getLogger(__name__)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot serve now (try again later)."""
    return isinstance(exc, StoreUnavailable | TimeoutError | ConnectionError)


class Episodes:
    """Outage episodes of one dependency, logged once each (see the module docstring)."""

    def __init__(
        self, what: str, *, quiet: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.what = what
        self.quiet = quiet
        self._clock = clock
        self.down_since: float | None = None
        self.failures = 0  # in the current episode
        self._last_failure = 0.0

    def failed(self, exc: BaseException) -> None:
        now = self._clock()
        if self.down_since is None or now - self._last_failure > self.quiet:
            self.down_since, self.failures = now, 0
            log.warning("%s unavailable: %s", self.what, exc or type(exc).__name__)
        self.failures += 1
        self._last_failure = now

    def recovered(self) -> None:
        if self.down_since is None:
            return
        log.warning(
            "%s available again after %.1f s (%d failures)",
            self.what,
            self._clock() - self.down_since,
            self.failures,
        )
        self.down_since = None
        self.failures = 0


STORAGE: Final = Episodes("storage")


class _DriverFaults(logging.Filter):
    """Folds a driver's own fault warnings into the storage episode: asyncpg's pool logs each
    failed attempt to restore its connection floor as a warning *with a traceback*, one per
    retry during an outage. A record whose exception is an expected fault is counted in
    ``STORAGE`` (logged once per episode) and dropped; any other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and unavailable(postgres.sort(exc)):
            STORAGE.failed(exc)
            return False
        return True


_DRIVER_FILTER: Final = _DriverFaults()


def fold_driver_logs() -> None:
    """Route the database driver's expected-fault warnings through ``STORAGE`` (idempotent)."""
    logging.getLogger("asyncpg.pool").addFilter(_DRIVER_FILTER)
