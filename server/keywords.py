"""The keyword matcher of this process, kept current across every server process.

The send path asks :attr:`LiveKeywords.matcher` about each text message before its append
(no round trip: the lists are compiled in memory, ``domain/keywords.py``). A change to the
lists (``PUT /admin/keywords``) bumps the stored version; the process that made it publishes
the new version on the ``keywords`` topic, and every process (itself at once, the others
through the broker) reads the lists again when the version it holds is older. Pub/sub is
at-most-once, so each process also compares its version with the stored one every
``check_every`` seconds (one small read, never on the send path): a change published while
the broker was down reaches it on the next check. Until then, the previous lists stay in
force (a message is flagged by the lists its process held when it was sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from channels.hub import Hub
from domain.keywords import EMPTY, Matcher
from storage import keywords
from storage.errors import StoreUnavailable
from storage.keywords import KeywordSet
from storage.sql import Database

log = logging.getLogger(__name__)

KEYWORDS_TOPIC = "keywords"


class LiveKeywords:
    def __init__(self, store: Database, hub: Hub, *, check_every: float = 30.0) -> None:
        self._store = store
        self._hub = hub
        self._check_every = check_every
        self.matcher: Matcher = EMPTY
        self.labels: dict[str, str] = {}  # category -> the admin's name for it (when given)
        self._changed = asyncio.Condition()
        self._loading: asyncio.Lock = asyncio.Lock()
        self._tasks: set[asyncio.Future[None]] = set()
        self._checker: asyncio.Task[None] | None = None

    @property
    def version(self) -> int:
        return self.matcher.version

    async def start(self) -> None:
        """Compile the stored lists, then follow changes (the topic and the periodic check)."""
        await self.reload()
        self._hub.listen(KEYWORDS_TOPIC, self._on_published)
        self._checker = asyncio.create_task(self._check_forever(), name="keyword-check")

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._checker] if self._checker else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def announce(self, version: int) -> None:
        """The lists changed to ``version`` (committed): tell every process."""
        self._hub.publish(KEYWORDS_TOPIC, str(version).encode())

    async def reload(self, at_least: int = 0) -> None:
        """Read and compile the stored lists, unless this process holds ``at_least`` already."""
        async with self._loading:
            if at_least and self.version >= at_least:
                return
            stored = await keywords.lists(self._store)
            if stored.version != self.version:
                self.matcher = Matcher(stored.as_mapping(), stored.version)
                self.labels = {k.category: k.label for k in stored.lists if k.label}
                log.info("keyword lists loaded", extra={"version": stored.version})
        async with self._changed:
            self._changed.notify_all()

    async def install(self, stored: KeywordSet) -> None:
        """Compile lists this process has just stored (no read): newer than what it holds."""
        async with self._loading:
            if stored.version > self.version:
                self.matcher = Matcher(stored.as_mapping(), stored.version)
                self.labels = {k.category: k.label for k in stored.lists if k.label}
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, version: int) -> None:
        """Return once this process holds ``version`` or a later one (tests, operators)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.version >= version)

    def _on_published(self, data: bytes) -> None:
        try:
            version = int(data)
        except ValueError:
            log.warning("dropped a malformed keyword-version message")
            return
        if version > self.version:
            task = asyncio.ensure_future(self._reload_quietly(version))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _reload_quietly(self, at_least: int = 0) -> None:
        try:
            await self.reload(at_least)
        except StoreUnavailable:
            pass  # the periodic check tries again
        except Exception:
            log.exception("reading the keyword lists failed")

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self._check_every)
            try:
                stored = await keywords.version(self._store)
            except StoreUnavailable:
                continue
            except Exception:
                log.exception("checking the keyword version failed")
                continue
            if stored != self.version:
                await self._reload_quietly()
