"""An officer disconnected longer than ``Settings.hold_grace`` loses its holds.

On duty means said so *and* connected (``server/duty.py``). An officer whose console lost
its connection (a closed laptop, a dead network) still said it is on duty, so going off duty
never released its threads: they stayed held by someone who was not there. Every process
looks every few seconds at the threads held in its prisons and at who is present
(``DutyRoster.present``); a holder absent from its prison's presence for ``hold_grace``
seconds gets each of its threads there returned to the queue (``conversation.released`` via
``disconnected``, announced like any release). A process only counts the absence it has seen
itself (a holder absent when it started is given the whole grace), and several processes may
try the same release: the store's row lock lets one succeed, the others find it released.
``hold_grace = 0`` turns this off. A short drop (a reconnect within the grace) keeps the holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from channels.broker import BrokerUnavailable
from server.api.desk import announce
from server.config import Settings
from server.duty import DutyRoster
from storage import desk
from storage.errors import NotFound, StoreUnavailable
from storage.sql import Database, utcnow

log = logging.getLogger(__name__)


class StaleHolds:
    def __init__(self, settings: Settings, db: Database, roster: DutyRoster) -> None:
        self.grace = settings.hold_grace
        self.interval = max(0.2, min(5.0, self.grace / 4))
        self.db = db
        self.roster = roster
        self.absent_since: dict[tuple[int, int], float] = {}  # (officer, prison) -> monotonic

    async def sweep(self, now: float) -> list[desk.Thread]:
        """One look: the threads released now (those of holders absent past the grace)."""
        held = await desk.held_threads(self.db)
        present: dict[int, set[int]] = {}
        for prison in sorted({t.prison_id for t in held}):
            present[prison] = set(await self.roster.present(prison))
        absent = {
            (t.assigned_officer_id, t.prison_id)
            for t in held
            if t.assigned_officer_id is not None
            and t.assigned_officer_id not in present[t.prison_id]
        }
        self.absent_since = {key: self.absent_since.get(key, now) for key in absent}
        released = []
        for thread in held:
            key = (thread.assigned_officer_id, thread.prison_id)
            if key not in absent or now - self.absent_since[key] < self.grace:
                continue
            officer = thread.assigned_officer_id
            assert officer is not None
            try:
                released.append(
                    await desk.release(self.db, thread.id, officer, utcnow(), via="disconnected")
                )
            except (desk.Held, desk.WrongState, NotFound):
                continue  # taken, released or resolved meanwhile (another process, a person)
        return released

    async def run(self, app: web.Application) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                for thread in await self.sweep(time.monotonic()):
                    assert thread.id
                    await announce(app, "released", thread, None)
            except (StoreUnavailable, BrokerUnavailable) as exc:
                log.warning("stale holds not checked: %s", type(exc).__name__)


@contextlib.asynccontextmanager
async def releasing_stale_holds(
    app: web.Application, settings: Settings, db: Database, roster: DutyRoster
) -> AsyncIterator[StaleHolds | None]:
    """Look for stale holds for the life of the app (none when ``hold_grace`` is 0)."""
    if settings.hold_grace <= 0:
        yield None
        return
    holds = StaleHolds(settings, db, roster)
    task = asyncio.create_task(holds.run(app))
    try:
        yield holds
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
