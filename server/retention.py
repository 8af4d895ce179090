"""The retention period, applied: once a day each process purges the text of messages older
than ``KINLINE_RETENTION_YEARS`` (``storage.retention.purge``; idempotent, so processes
racing each other purge each message once), after writing them to an archive file in
``KINLINE_RETENTION_ARCHIVE`` when that is set. ``kinline retention`` does the same by hand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

from storage import retention
from storage.errors import StoreUnavailable
from storage.retention_archive import ArchiveFailed
from storage.sql import Database, utcnow

log = logging.getLogger(__name__)
DAY = 86400.0


def retention_cutoff(years: int, now: datetime) -> datetime:
    """Messages written before this are past ``years`` of retention (365.25-day years)."""
    return now - timedelta(days=365.25 * years)


def archive_dir(setting: str) -> Path | None:
    """Where ``KINLINE_RETENTION_ARCHIVE`` keeps the archives (None: purge alone)."""
    return Path(setting) if setting else None


async def _daily(db: Database, years: int, archive_to: Path | None) -> None:
    while True:
        try:
            now = utcnow()
            count = await retention.purge(
                db, retention_cutoff(years, now), now, archive_to=archive_to
            )
            if count:
                log.info("retention: purged message text", extra={"messages": count})
        except StoreUnavailable as exc:
            log.warning("retention not applied: %s", exc)
        except ArchiveFailed as exc:  # the archive could not be written: nothing was purged
            log.error("retention not applied: the archive could not be written: %s", exc)
        await asyncio.sleep(DAY)


@contextlib.asynccontextmanager
async def applying_retention(db: Database, years: int, archive: str = "") -> AsyncIterator[None]:
    if years == 0:
        yield
        return
    task = asyncio.create_task(_daily(db, years, archive_dir(archive)))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
