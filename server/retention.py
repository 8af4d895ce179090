"""The retention period, applied: once a day each process purges the text of messages older
than ``KINLINE_RETENTION_YEARS`` (``storage.retention.purge``; idempotent, so processes
racing each other purge each message once). ``kinline retention`` does the same by hand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from storage import retention
from storage.errors import StoreUnavailable
from storage.sql import Database, utcnow

log = logging.getLogger(__name__)
DAY = 86400.0


def retention_cutoff(years: int, now: datetime) -> datetime:
    """Messages written before this are past ``years`` of retention (365.25-day years)."""
    return now - timedelta(days=365.25 * years)


async def _daily(db: Database, years: int) -> None:
    while True:
        try:
            now = utcnow()
            count = await retention.purge(db, retention_cutoff(years, now), now)
            if count:
                log.info("retention: purged message text", extra={"messages": count})
        except StoreUnavailable as exc:
            log.warning("retention not applied: %s", exc)
        await asyncio.sleep(DAY)


@contextlib.asynccontextmanager
async def applying_retention(db: Database, years: int) -> AsyncIterator[None]:
    if years == 0:
        yield
        return
    task = asyncio.create_task(_daily(db, years))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
