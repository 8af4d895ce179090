"""The daily anchor: each process takes the anchor of the day (UTC) when it starts and after
each midnight (``storage.chain_anchors.anchor``; idempotent per day, so processes racing each
other keep one). ``kinline anchor`` does the same by hand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from storage import chain_anchors
from storage.errors import StoreUnavailable
from storage.sql import Database, utcnow

log = logging.getLogger(__name__)
RETRY = 300.0  # seconds, after the database could not be reached


def until_tomorrow(now: datetime) -> float:
    """Seconds from ``now`` to a minute past the next UTC midnight."""
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
    return (midnight - now).total_seconds() + 60


async def _daily(db: Database) -> None:
    while True:
        try:
            taken, created = await chain_anchors.anchor(db, utcnow())
            if created:
                log.info("anchored the chains", extra={"day": str(taken.day)})
            pause = until_tomorrow(utcnow())
        except StoreUnavailable as exc:
            log.warning("anchor not taken: %s", exc)
            pause = RETRY
        await asyncio.sleep(pause)


@contextlib.asynccontextmanager
async def anchoring(db: Database) -> AsyncIterator[None]:
    task = asyncio.create_task(_daily(db))
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # an anchor cut short by the store closing: never fail the shutdown
            log.exception("the anchoring task ended with an error")
