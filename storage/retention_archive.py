"""Retention by archive: before their text is emptied, the messages past the period are
written to a file the bureau keeps (``KINLINE_RETENTION_ARCHIVE``, a directory).

One purge writes one gzip file of JSON lines, ``messages-<time>.jsonl.gz``: per message its
conversation, seq, sender, kind, text, time, chain hash (``hash``, lowercase hex: the record
can still be checked against the conversation's chain and its anchors) and its files'
metadata (the files themselves go as in a plain purge). It is read in pages of ``PAGE``
inside the purge's own transaction, so memory stays bounded and no message is emptied
unless it is in the file: the file is complete and flushed to disk before the purge's
``UPDATE`` runs, and a file that cannot be written aborts the purge.

Trade-off: if the purge's commit then fails, the file stays though the messages were not
emptied; the next run archives them again, in a newer file. A message is thus archived at
least once, never lost.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgspec

from storage import attachments
from storage.sql import Database, Sql, for_update

PAGE = 1000


class ArchiveFailed(Exception):
    """The archive file could not be written (so nothing was purged)."""


class Archived(msgspec.Struct, frozen=True):
    path: str
    messages: int
    sha256: str  # of the file as written


def _line(row: Any, files: tuple[Any, ...]) -> bytes:
    at = row["created_at"]
    digest = row["hash"]
    record: dict[str, Any] = {
        "conv": row["conversation_id"],
        "seq": row["seq"],
        "sender": row["sender_id"],
        "role": row["sender_role"],
        "kind": row["kind"],
        "body": row["body"],
        "at": at.isoformat() if isinstance(at, datetime) else str(at),
        "hash": bytes(digest).hex() if digest is not None else None,
    }
    if files:
        record["attachments"] = [
            {"name": f.name, "type": f.content_type, "size": f.size, "sha256": f.sha256}
            for f in files
        ]
    return msgspec.json.encode(record) + b"\n"


def _open(directory: Path, partial: Path) -> tuple[IO[bytes], gzip.GzipFile]:
    directory.mkdir(parents=True, exist_ok=True)
    raw = partial.open("wb")
    return raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)


def _write(out: gzip.GzipFile, lines: list[bytes]) -> None:
    out.writelines(lines)


def _finish(raw: IO[bytes], out: gzip.GzipFile, partial: Path, path: Path, count: int) -> str:
    """Close the file, on disk for good; its SHA-256 ("" and no file when it holds none)."""
    try:
        out.close()
        raw.flush()
        os.fsync(raw.fileno())
    finally:
        raw.close()
    if count == 0:
        partial.unlink()
        return ""
    partial.rename(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _drop(raw: IO[bytes], partial: Path) -> None:
    raw.close()
    partial.unlink(missing_ok=True)


async def archive(
    db: Database, sql: Sql, before: datetime, directory: Path, now: datetime
) -> Archived:
    """Write every message created before ``before`` and not purged yet to a new file in
    ``directory``, inside the caller's purge transaction (module docstring). The rows are
    locked as they are read: a second process purging at once waits, then finds them done."""
    path = directory / f"messages-{now:%Y%m%dT%H%M%S%f}.jsonl.gz"
    partial = path.with_suffix(".part")
    try:
        raw, out = await asyncio.to_thread(_open, directory, partial)
    except OSError as exc:
        raise ArchiveFailed(f"{partial}: {exc.strerror or exc}") from exc
    count, after = 0, 0
    try:
        while True:
            rows = await sql.fetch(
                "SELECT id, conversation_id, seq, sender_id, sender_role, kind, body,"
                " created_at, hash FROM messages"
                " WHERE created_at < $1 AND purged_at IS NULL AND id > $2"
                " ORDER BY id LIMIT $3" + for_update(db),
                before,
                after,
                PAGE,
            )
            if not rows:
                break
            files = await attachments.of_messages(sql, [r["id"] for r in rows])
            lines = [_line(r, files.get(r["id"], ())) for r in rows]
            await asyncio.to_thread(_write, out, lines)
            count += len(rows)
            after = rows[-1]["id"]
    except OSError as exc:
        await asyncio.to_thread(_drop, raw, partial)
        raise ArchiveFailed(f"{partial}: {exc.strerror or exc}") from exc
    except BaseException:
        await asyncio.to_thread(_drop, raw, partial)
        raise
    try:
        digest = await asyncio.to_thread(_finish, raw, out, partial, path, count)
    except OSError as exc:
        raise ArchiveFailed(f"{path}: {exc.strerror or exc}") from exc
    return Archived(str(path) if count else "", count, digest)
