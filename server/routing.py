"""Where a new question goes: auto-assignment and the away reply (a prison's desk settings,
``storage/desk_settings.py``).

- **Auto-assignment.** With a prison's ``auto_assign = round_robin``, a question that opens
  a cycle in a thread nobody holds is given at once to the next on-duty officer (said so
  *and* connected: ``DutyRoster.present``) below the cap; one given is announced like a claim
  (``conversation {event: claimed, officer, by: null}``, audited via ``auto``). When every
  officer is at the cap the question waits in the queue, and is given when capacity frees:
  this process tries again at once after a change it made (resolve, release, transfer:
  ``nudge``), and every process sweeps the prisons with an unheld waiting question every
  ``Settings.assign_interval`` seconds (an officer coming on duty, a change on another
  process). Any number of processes may try at once: ``storage/routing.py`` makes each
  assignment one transaction under the prison's lock with a conditional update, so a thread
  is never given twice nor an officer past its cap.
- **The away reply.** With ``away_reply`` on, a question that opens a cycle while nobody is
  on duty in its prison is answered by a ``system`` message stating the desk hours, a card
  (``{"fact": "away", "text": {"zh-CN", "en"}, ...}``) that the pages show in the reader's
  language. Once per question: its cid is ``away-<cycle>`` (a retried question, or two
  processes, store it once). A system message is no answer: the life cycle and the figures
  count only officers' texts (migration 0007).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from channels.broker import BrokerUnavailable
from domain.records import Conversation, NewMessage
from server.config import Settings
from server.duty import DutyRoster
from server.sending import SendPath
from storage import desk_settings, routing
from storage.desk_settings import DeskHours
from storage.errors import NotFound, StoreUnavailable
from storage.sql import Database, utcnow

log = logging.getLogger(__name__)


def away_card(hours: DeskHours, cycle: int) -> str:
    """The away reply's body: a card with its sentence per language (keys sorted)."""
    zh_hours = f"值班时间：{hours.zh}。" if hours.zh else ""
    en_hours = f"Desk hours: {hours.en}. " if hours.en else ""
    card = {
        "fact": "away",
        "cycle": cycle,
        "desk_hours": {"zh-CN": hours.zh, "en": hours.en},
        "text": {
            "zh-CN": f"现在没有值班民警。{zh_hours}您的问题已在队列中，民警上班后会尽快答复。",
            "en": (
                f"No officer is on duty right now. {en_hours}Your question is in the queue"
                " and will be answered as soon as an officer is on duty."
            ),
        },
    }
    return json.dumps(card, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class Router:
    def __init__(
        self,
        app: web.Application,
        settings: Settings,
        db: Database,
        roster: DutyRoster,
        send_path: SendPath,
    ) -> None:
        self.app = app
        self.db = db
        self.roster = roster
        self.send_path = send_path
        self.interval = settings.assign_interval
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: dict[int, asyncio.Lock] = {}  # prison -> one assigner here at a time

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def question(self, conv: Conversation, cycle: int) -> None:
        """A question opened cycle ``cycle`` of ``conv`` (told by the send path, committed)."""
        self._spawn(self._question(conv, cycle))

    def nudge(self, prison_id: int) -> None:
        """Capacity may have freed in the prison (a thread resolved, released, transferred)."""
        self._spawn(self._guarded(prison_id))

    async def _question(self, conv: Conversation, cycle: int) -> None:
        try:
            setting = await desk_settings.settings(self.db, conv.prison_id)
            if setting.away_reply and not await self.roster.present(conv.prison_id):
                await self.send_path.post(
                    NewMessage(
                        conversation_id=conv.id,
                        sender_id=conv.relative_id,
                        sender_role="relative",
                        cid=f"away-{cycle}",
                        body=away_card(setting.desk_hours, cycle),
                        kind="system",
                    ),
                    conv,
                )
        except (StoreUnavailable, BrokerUnavailable, NotFound) as exc:
            log.warning("away reply not sent: %s", type(exc).__name__, extra={"conv": conv.id})
        await self._guarded(conv.prison_id)

    async def _guarded(self, prison_id: int) -> None:
        try:
            await self.assign(prison_id)
        except (StoreUnavailable, BrokerUnavailable) as exc:
            log.warning("questions not assigned: %s", type(exc).__name__)

    async def assign(self, prison_id: int) -> int:
        """Give the prison's unheld waiting questions while someone is below the cap; how
        many were given (and announced)."""
        from server.api.desk import announce  # the API imports this module's users

        try:
            if (await desk_settings.settings(self.db, prison_id)).auto_assign == "off":
                return 0  # a read, not the write lock (SQLite's one writer) for nothing
        except NotFound:
            return 0
        lock = self._busy.setdefault(prison_id, asyncio.Lock())
        given = 0
        async with lock:
            while True:
                present = await self.roster.present(prison_id)
                thread = await routing.assign_next(self.db, prison_id, present, utcnow())
                if thread is None:
                    return given
                given += 1
                await announce(self.app, "claimed", thread, None)

    async def sweep(self) -> None:
        for prison_id in await desk_settings.waiting_auto_prisons(self.db):
            await self.assign(prison_id)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except (StoreUnavailable, BrokerUnavailable) as exc:
                log.warning("assignment sweep skipped: %s", type(exc).__name__)

    async def settled(self) -> None:
        """Wait until every question and nudge told so far is handled (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def routing_questions(
    app: web.Application,
    settings: Settings,
    db: Database,
    roster: DutyRoster,
    send_path: SendPath,
) -> AsyncIterator[Router]:
    """The router for the life of the app: told of every question the send path stores, and
    sweeping every ``assign_interval`` seconds."""
    router = Router(app, settings, db, roster, send_path)
    send_path.on_question = router.question
    sweeper = asyncio.create_task(router.run())
    try:
        yield router
    finally:
        send_path.on_question = None
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await router.close()
