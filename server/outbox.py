"""The relay: sends what the outbox owes relatives (``storage/outbox.py``), on every process.

Each process runs one ``Relay``. It claims due rows (a lease; one process per row), decides,
sends, and settles each row with its attempt recorded. It looks again every
``KINLINE_OUTBOX_POLL`` seconds, and at once when this process committed an officer's answer
(``wake``). Rows outlive processes: a restarted server sends what its predecessor had not.

What a row becomes, in order of the checks (made at send time, not when the row was written):

1. ``skipped``: the relative opted out (channel ``none``), is connected to the web app (it sees
   the answer live: ``server/online.py``), has already read the answer, or has no channel left
   (unbound, no device, no phone); and, for a template message, a push or an SMS about an
   answer, *coalescing*: another one about the same conversation reached it less than
   ``KINLINE_NOTIFY_COALESCE`` seconds ago and it has not read since.
2. ``sent`` by the first channel that applies: ``wechat`` (a customer-service text carrying
   the answer, allowed within 48 hours of the relative's last message from WeChat) else
   ``template`` (no message body: the inmate's name, the kind of event, a link into ``/app``;
   also when the platform answers "out of time limit"); ``push`` (every device of the relative;
   a device the push service says is gone is removed); ``sms`` only for a relative that chose
   it. Channel ``auto`` means WeChat when bound, else Web Push.
3. On a failure that may pass (the platform busy or unreachable, a 5xx, a 429): due again
   after a jittered exponential back-off (``KINLINE_OUTBOX_BACKOFF`` doubled per attempt, at
   most ``MAX_BACKOFF``, times a random factor in [0.5, 1]); ``failed`` after
   ``KINLINE_OUTBOX_MAX_ATTEMPTS`` attempts, or at once on a refusal that will not pass.

Privacy: nothing but a WeChat customer-service text (the chat channel itself) carries the
message body; a push or an SMS says whom and what kind of event, never what was said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from server import faults
from server.config import Settings
from server.online import Online
from server.push import Push, PushFailed
from server.sms import SmsFailed, SmsSender
from server.wechat_platform import OUT_OF_WINDOW, Platform, PlatformError
from storage import outbox, wechat
from storage.outbox import Item
from storage.sql import Database, utcnow

log = logging.getLogger(__name__)

LEASE = 60.0  # seconds a claim holds a row (every send gives up well before: 10 s timeouts)
BATCH = 32
MAX_BACKOFF = 300.0
WINDOW = timedelta(hours=48)  # the customer-service window after a relative's last message

DECISIONS = {
    ("link", "verified"): "您的亲属关系申请已核实通过",
    ("link", "rejected"): "您的亲属关系申请未通过",
    ("visit", "approved"): "您的会见申请已批准",
    ("visit", "declined"): "您的会见申请未获批准",
    ("complaint", "answered"): "您的投诉已有答复",
}


PAGES = {"link": "#/links", "visit": "#/visits", "complaint": "#/complaints"}  # where it is read


@dataclass(frozen=True)
class Outcome:
    state: Literal["sent", "skipped", "failed", "retry"]
    channel: str | None
    detail: str


class Retry(Exception):
    def __init__(self, channel: str, detail: str, *, transient: bool) -> None:
        super().__init__(detail)
        self.channel = channel
        self.transient = transient


class Relay:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        online: Online,
        sms: SmsSender,
        *,
        platform: Platform | None = None,
        push: Push | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._db = db
        self._online = online
        self._sms = sms
        self._platform = platform
        self._push = push
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """Something was just written to the outbox: look now."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                handled = await self.run_once()
            except Exception as exc:
                if faults.unavailable(exc):
                    faults.STORAGE.failed(exc)
                else:
                    log.exception("outbox relay failed")
                handled = 0
            if handled >= BATCH:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(await self._pause()):
                    await self._wake.wait()

    async def _pause(self) -> float:
        """Until the next look: the poll interval, or sooner if a retry is due sooner."""
        poll = self._settings.outbox_poll
        try:
            due = await outbox.next_due(self._db)
        except Exception:
            return poll
        if due is None:
            return poll
        return min(poll, max((due - self._clock()).total_seconds(), 0.0) + 0.001)

    async def run_once(self) -> int:
        """Claim the due rows and settle each; how many were claimed."""
        items = await outbox.claim(self._db, self._clock(), LEASE, BATCH)
        await asyncio.gather(*(self._settle(item) for item in items))
        return len(items)

    async def _settle(self, item: Item) -> None:
        try:
            outcome = await self._decide_and_send(item)
        except Retry as retry:
            outcome = Outcome("retry" if retry.transient else "failed", retry.channel, str(retry))
        except Exception as exc:
            if faults.unavailable(exc):  # the lease runs out; the row is taken again then
                faults.STORAGE.failed(exc)
                return
            log.exception("outbox item failed", extra={"outbox": item.id})
            outcome = Outcome("retry", None, f"internal error: {exc!r}")
        now = self._clock()
        if outcome.state == "retry" and item.attempt >= self._settings.outbox_max_attempts:
            outcome = Outcome("failed", outcome.channel, f"gave up: {outcome.detail}")
        if outcome.state == "retry":
            delay = min(self._settings.outbox_backoff * 2 ** (item.attempt - 1), MAX_BACKOFF)
            at = now + timedelta(seconds=delay * random.uniform(0.5, 1.0))
            await outbox.retry(self._db, item, outcome.channel or "-", outcome.detail, at, now)
        else:
            await outbox.finish(self._db, item, outcome.state, outcome.channel, outcome.detail, now)

    async def _decide_and_send(self, item: Item) -> Outcome:
        db, now = self._db, self._clock()
        choice = await outbox.channel_of(db, item.relative_id)
        if choice == "none":
            return Outcome("skipped", None, "opted out")
        if await self._online.connected(item.relative_id):
            return Outcome("skipped", None, "connected: seen live")
        link = f"{self._settings.public_base}/app"
        body: str | None = None  # what a WeChat text may carry
        if item.event == "answer":
            facts = await outbox.answer_facts(db, item)
            if facts is None:
                return Outcome("skipped", None, "the message is gone")
            if facts.read_seq >= facts.seq:
                return Outcome("skipped", None, "already read")
            about = facts.inmate_name
            what = f"您关于{about}的咨询有了新回复"
            body = f"{facts.sender_name}：{facts.body}"
            link = f"{link}#/inmate/{facts.inmate_id}"  # opens the conversation
            assert item.conversation_id is not None
            since = now - timedelta(seconds=self._settings.notify_coalesce)
            told = await outbox.recently_told(
                db, item.relative_id, item.conversation_id, since, item.id
            )
            coalesced = told is not None and facts.read_seq < told
        else:
            what = DECISIONS.get((item.event, item.decision or ""), "您的申请有了新进展")
            link += await self._page(item)
            coalesced = False
        binding = None
        if self._platform is not None and choice in ("auto", "wechat"):
            binding = await wechat.binding_of(db, item.relative_id)
        if binding is not None and self._platform is not None:
            in_window = (
                binding.last_inbound_at is not None and now - binding.last_inbound_at < WINDOW
            )
            if in_window and body is not None:
                try:
                    await self._platform.send_text(binding.openid, body)
                    return Outcome("sent", "wechat", "customer-service message")
                except PlatformError as error:
                    if error.errcode != OUT_OF_WINDOW:
                        raise Retry("wechat", str(error), transient=error.transient) from None
            if coalesced:
                return Outcome("skipped", None, "coalesced: told recently, not read since")
            try:
                await self._platform.send_template(
                    binding.openid,
                    link,
                    {
                        "first": what,
                        "keyword1": what,
                        "keyword2": f"{now:%Y-%m-%d %H:%M} UTC",
                        "remark": "点击查看详情",
                    },
                )
            except PlatformError as error:
                raise Retry("template", str(error), transient=error.transient) from None
            return Outcome("sent", "template", "template message")
        if choice == "wechat":
            return Outcome("skipped", None, "chose WeChat, not bound")
        if coalesced:
            return Outcome("skipped", None, "coalesced: told recently, not read since")
        if choice in ("auto", "push") and self._push is not None:
            devices = await outbox.devices(db, item.relative_id)
            if devices:
                return await self._push_to(item, devices, what, link)
            if choice == "push":
                return Outcome("skipped", None, "no push device")
        if choice == "sms":
            phone = await outbox.phone_of(db, item.relative_id)
            if not phone:
                return Outcome("skipped", None, "no phone number")
            try:
                await self._sms.send(phone, f"【Kinline】{what}，请登录查看：{link}")
            except SmsFailed as failed:
                raise Retry("sms", str(failed), transient=failed.transient) from None
            return Outcome("sent", "sms", "text message")
        return Outcome("skipped", None, "no channel")

    async def _page(self, item: Item) -> str:
        """Where in ``/app`` a decision is read: a visit on its inmate's visits page."""
        if item.event == "visit" and item.object_id is not None:
            inmate_id = await outbox.visit_inmate(self._db, item.object_id)
            if inmate_id is not None:
                return f"#/inmate/{inmate_id}/visits"
        return PAGES.get(item.event, "#/")

    async def _push_to(
        self, item: Item, devices: list[outbox.PushDevice], what: str, link: str
    ) -> Outcome:
        assert self._push is not None
        payload = {"title": "Kinline", "body": what, "url": link, "tag": f"kinline-{item.event}"}
        if item.conversation_id is not None:
            payload["tag"] = f"conv-{item.conversation_id}"
        reached, failures = 0, []
        for device in devices:
            try:
                result = await self._push.send(device, payload)
            except PushFailed as failed:
                failures.append(failed)
                continue
            if result == "gone":
                await outbox.remove_device(self._db, None, device.endpoint)
            else:
                reached += 1
        if reached:
            return Outcome("sent", "push", f"{reached} of {len(devices)} devices")
        if failures:
            transient = any(f.transient for f in failures)
            raise Retry("push", "; ".join(str(f) for f in failures), transient=transient)
        return Outcome("skipped", None, "every push device is gone")
