"""The attachments' sweep, on every process: uploads never sent (bound to no stored message
and no link request within ``KINLINE_UNSENT_ATTACHMENT_HOURS``) are removed, and every object
whose row is gone (swept, or purged with its message by retention) is deleted from the
object store, then forgotten (``storage/attachments.py``). Both steps are idempotent, so
processes sweeping at once delete each file once or harmlessly twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from server import faults
from storage import attachments
from storage.errors import StoreUnavailable
from storage.objects import ObjectStore
from storage.sql import Database, utcnow

log = logging.getLogger(__name__)


async def sweep(
    db: Database, objects: ObjectStore, unsent_hours: float, now: datetime | None = None
) -> tuple[int, int]:
    """One sweep: (uploads removed, objects deleted)."""
    now = now or utcnow()
    removed = await attachments.discard_unsent(db, now - timedelta(hours=unsent_hours), now)
    deleted = 0
    while keys := await attachments.trash(db):
        for key in keys:
            await objects.delete(key)
        await attachments.forget_trash(db, keys)
        deleted += len(keys)
    return removed, deleted


async def _periodic(db: Database, objects: ObjectStore, unsent_hours: float, every: float) -> None:
    while True:
        try:
            removed, deleted = await sweep(db, objects, unsent_hours)
            if removed or deleted:
                log.info("attachments swept", extra={"removed": removed, "deleted": deleted})
        except Exception as exc:
            if not (isinstance(exc, StoreUnavailable) or faults.unavailable(exc)):
                log.exception("attachment sweep failed")
            else:
                log.warning("attachment sweep not done: %s", exc)
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def sweeping(
    db: Database, objects: ObjectStore, unsent_hours: float, every: float
) -> AsyncIterator[None]:
    task = asyncio.create_task(_periodic(db, objects, unsent_hours, every))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
