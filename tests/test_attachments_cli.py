"""``kinline retention`` by hand removes a purged message's files from the object store too,
not only their rows (a serving process's sweep would do it later; the command does it now)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from domain.records import NewMessage
from storage import attachments, open_database
from storage.errors import NotFound
from storage.objects import LocalObjects
from storage.sql import utcnow
from tests.tamper import triggers_off
from tests.test_cli import clean_env
from tests.world import seed

pytestmark = pytest.mark.spawns


def test_kinline_retention_deletes_the_purged_messages_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    files = LocalObjects(tmp_path / "files")

    async def setup() -> str:
        store = await open_database(url)
        try:
            await store.migrate()
            w = await seed(store)
            await files.put("a/00/" + "1" * 32, b"photo", "image/jpeg")
            found = await attachments.add(
                store,
                owner_id=w.relative.id,
                content_type="image/jpeg",
                name="p.jpg",
                size=5,
                sha256="a" * 64,
                object_key="a/00/" + "1" * 32,
                thumb_key=None,
                width=1,
                height=1,
                now=utcnow(),
            )
            bound = await attachments.bind_to_message(
                store, [found.id], owner_id=w.relative.id, conversation_id=w.conv.id, cid="c"
            )
            r = w.relative
            await store.append_messages(
                [NewMessage(w.conv.id, r.id, "relative", "c", "old", "text", r.name, bound)]
            )
            async with triggers_off(store, "messages") as sql:  # written three years ago
                await sql.execute(
                    "UPDATE messages SET created_at = $1", utcnow() - timedelta(days=3 * 366)
                )
            return found.object_key
        finally:
            await store.close()

    key = asyncio.run(setup())
    result = subprocess.run(
        [sys.executable, "-m", "server", "--database-url", url, "retention"],
        cwd=tmp_path,
        env=clean_env(KINLINE_RETENTION_YEARS="2", KINLINE_FILES=str(tmp_path / "files")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("(1 files deleted)"), result.stdout

    async def gone() -> None:
        with pytest.raises(NotFound):
            await files.get(key)

    asyncio.run(gone())
