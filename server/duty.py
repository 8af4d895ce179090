"""Who is on duty now, per prison, across every process: the ``presence`` events.

An officer counts as on duty while it has said so (``PUT /duty``, stored in table ``duty``;
never said: off) AND one of its sockets is open. A process reads the flag when an officer's
first socket arrives there, and learns of a change from the gateway's control topic
(``Control(op="duty")``, sent by whichever process took the ``PUT``), so the change shows
everywhere at once. Each process heartbeats its own on-duty officers into the shared
``Presence`` store on one timer (no task per socket), and an entry a dead process stops
refreshing expires after ``ttl``. Whenever a process sees a prison's set change (an arrival,
a departure, or an expiry noticed on its timer) it publishes a ``presence`` event: relatives
of the prison get the count ("3 officers on duty now"), staff also get the names (the first
``MAX_NAMES``; ``policy.presence_audience``). Two processes may report the same change; the
event carries the whole state, so a repeat is harmless.

Arrivals and departures are coalesced: a prison's state is published at most once per
``coalesce`` seconds, with the latest state. Without it, N officers signing on at shift
change would send N events of up to N names to N staff sockets: O(N^2) bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence

from channels.batched import Batched
from channels.broker import BrokerUnavailable
from channels.hub import Hub
from channels.presence import Presence
from channels.protocol import PresenceEvent, UserRef
from server.audience import PresenceChanged, tell
from storage import accounts, desk
from storage.errors import NotFound, StoreUnavailable
from storage.sql import Database

log = logging.getLogger(__name__)

MAX_NAMES = 100


class DutyRoster:
    def __init__(
        self,
        presence: Presence,
        hub: Hub,
        store: Database,
        *,
        ttl: float = 30.0,
        interval: float = 10.0,
        coalesce: float = 0.5,
    ) -> None:
        self._presence = presence
        self._hub = hub
        self._store = store
        self._ttl = ttl
        self._interval = interval
        self._local: Counter[tuple[int, int]] = Counter()  # (prison, officer) -> open sockets
        self._duty: dict[int, bool] = {}  # officer with sockets here -> said it is on duty
        self._listed: set[tuple[int, int]] = set()  # (prison, officer) heartbeated from here
        self._syncing = asyncio.Lock()  # presence writes in the order they were decided
        self._watched: Counter[int] = Counter()  # prison -> local sockets following it
        self._known: dict[int, list[int]] = {}  # prison -> officers last reported
        self._names: dict[int, UserRef] = {}
        self._timer: asyncio.Task[None] | None = None
        self._coalesce = coalesce
        self._dirty: set[int] = set()
        self._flusher: asyncio.Task[None] | None = None
        # officers arriving at once read their flags in one statement, sockets joining a
        # prison at once its presence in one round trip (channels/batched.py: never cached)
        self._on_duty: Batched[int, bool] = Batched(self._read_on_duty, False)
        self._present: Batched[int, list[int]] = Batched(self._read_present, [])

    async def start(self) -> None:
        self._timer = asyncio.create_task(self._refresh_forever(), name="duty-roster")

    async def close(self) -> None:
        for task in (self._timer, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for prison, officer in list(self._listed):
            with contextlib.suppress(BrokerUnavailable):
                await self._presence.leave(prison, officer)
        await self._presence.close()

    def _here(self, officer_id: int, prisons: tuple[int, ...]) -> bool:
        return any(self._local.get((prison, officer_id), 0) > 0 for prison in prisons)

    async def arrive(self, officer: UserRef, prisons: tuple[int, ...]) -> None:
        """An officer's socket opened here: it counts if it said it is on duty."""
        self._names[officer.id] = officer
        for prison in prisons:
            self._local[(prison, officer.id)] += 1
        if officer.id not in self._duty:
            said = await self._said_on_duty(officer.id)
            # A change read meanwhile (duty_changed) is at least as new: it wins.
            if self._here(officer.id, prisons):
                self._duty.setdefault(officer.id, said)
        await self._sync(officer.id, prisons)

    async def depart(self, officer_id: int, prisons: tuple[int, ...]) -> None:
        for prison in prisons:
            self._local[(prison, officer_id)] -= 1
            if self._local[(prison, officer_id)] <= 0:
                del self._local[(prison, officer_id)]
        if not self._here(officer_id, prisons):
            self._duty.pop(officer_id, None)
        await self._sync(officer_id, prisons)

    async def duty_changed(self, officer_id: int, prisons: tuple[int, ...]) -> None:
        """The officer's stored flag changed (``Control(op="duty")``): read it again. Reading
        rather than trusting the value told settles two quick changes taken by two processes
        on the one stored last, whatever order their messages arrive in. Only an officer with
        sockets here is tracked here; one arriving later reads the stored flag."""
        if self._here(officer_id, prisons):
            said = await self._said_on_duty(officer_id)
            if self._here(officer_id, prisons):
                self._duty[officer_id] = said
                await self._sync(officer_id, prisons)

    async def _read_on_duty(self, officer_ids: Sequence[int]) -> dict[int, bool]:
        return dict.fromkeys(await desk.on_duty_of(self._store, officer_ids), True)

    async def _read_present(self, prisons: Sequence[int]) -> dict[int, list[int]]:
        return {prison: await self._presence.present(prison) for prison in prisons}

    async def _said_on_duty(self, officer_id: int) -> bool:
        try:
            return await self._on_duty.get(officer_id)
        except StoreUnavailable:
            log.warning(
                "duty flag unreadable; officer counted off duty", extra={"user": officer_id}
            )
            return False

    async def _sync(self, officer_id: int, prisons: tuple[int, ...]) -> None:
        """Make the shared presence match what is true here now: listed in each prison iff
        the officer has a socket here and said it is on duty. Serialised, and always from
        the latest state, so racing changes settle on the last one."""
        async with self._syncing:
            for prison in prisons:
                key = (prison, officer_id)
                wanted = self._local.get(key, 0) > 0 and self._duty.get(officer_id, False)
                if wanted and key not in self._listed:
                    self._listed.add(key)
                    await self._guard(self._presence.heartbeat(prison, officer_id, self._ttl))
                    self._changed(prison)
                elif not wanted and key in self._listed:
                    self._listed.discard(key)
                    await self._guard(self._presence.leave(prison, officer_id))
                    self._changed(prison)

    def _changed(self, prison: int) -> None:
        self._dirty.add(prison)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_later(), name="duty-flush")

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._coalesce)  # gather the changes of this window
        dirty, self._dirty, self._flusher = self._dirty, set(), None
        for prison in dirty:
            await self._check(prison)

    def follow(self, prison: int) -> None:
        self._watched[prison] += 1

    def unfollow(self, prison: int) -> None:
        self._watched[prison] -= 1
        if self._watched[prison] <= 0:
            del self._watched[prison]
            self._known.pop(prison, None)

    async def present(self, prison: int) -> list[int]:
        """The officers on duty in the prison now (said so and connected), across processes."""
        return await self._presence.present(prison)

    async def now(self, prison: int, *, staff: bool) -> PresenceEvent:
        """The prison's current state, for a socket that just joined."""
        ids = await self._present.get(prison)
        return PresenceEvent(prison, len(ids), await self._names_of(ids) if staff else None)

    async def _names_of(self, ids: list[int]) -> list[UserRef]:
        return [await self._name(i) for i in ids[:MAX_NAMES]]

    async def _name(self, officer_id: int) -> UserRef:
        if officer_id not in self._names:
            try:
                user = await accounts.user(self._store, officer_id)
                self._names[officer_id] = UserRef(user.id, user.role, user.name)
            except (NotFound, StoreUnavailable):
                return UserRef(officer_id, "officer", "")
        return self._names[officer_id]

    async def _check(self, prison: int) -> None:
        """Publish the prison's state if it differs from what this process last reported."""
        try:
            ids = await self._presence.present(prison)
        except BrokerUnavailable:
            return
        if self._known.get(prison) == ids:
            return
        self._known[prison] = ids
        officers = await self._names_of(ids)
        tell(self._hub, PresenceChanged(prison, len(ids), officers))

    async def _guard(self, call: object) -> None:
        try:
            await call  # type: ignore[misc]
        except BrokerUnavailable as exc:
            log.warning("presence store unavailable", extra={"error": str(exc)})

    async def refresh(self) -> None:
        """Heartbeat this process's on-duty officers, then look for changes (expiries) in
        every prison someone here follows."""
        for prison, officer in list(self._listed):
            await self._guard(self._presence.heartbeat(prison, officer, self._ttl))
        for prison in set(self._watched) | {prison for prison, _ in self._local}:
            await self._check(prison)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("duty roster refresh failed")
