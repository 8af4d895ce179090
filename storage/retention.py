"""Retention: the text of messages older than the retention period is purged.

A purged message keeps its row (conversation, seq, sender, kind, time): sequences have no
holes, figures and the audit trail still add up, a reader resuming from an old cursor still
gets every seq. Only its body is emptied and ``purged_at`` set, and its attachments are
removed (``storage/attachments.py``: rows now, objects by the sweep). One purge is one transaction
with one audit entry saying how many and up to when; running it again purges nothing more.
The retention setting chooses between purging alone and archiving first
(``KINLINE_RETENTION_ARCHIVE``: the messages are written to a file the bureau keeps, then
emptied; ``storage/retention_archive.py``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from storage import attachments, audit_trail, retention_archive
from storage.sql import Database


async def purge(
    db: Database,
    before: datetime,
    now: datetime,
    actor_id: int | None = None,
    *,
    archive_to: Path | None = None,
) -> int:
    """Empty the text of every message created before ``before``; how many were purged.
    With ``archive_to`` (a directory) they are first written to an archive file there
    (``storage/retention_archive.py``), named with its SHA-256 in the audit entry."""
    async with db.write() as sql:
        kept = (
            await retention_archive.archive(db, sql, before, archive_to, now)
            if archive_to
            else None
        )
        # their files go too, in the same transaction (their objects: the attachments' sweep)
        files = await attachments.discard_of_messages_before(sql, before, now)
        count = await sql.execute(
            "UPDATE messages SET body = '', purged_at = $2"
            " WHERE created_at < $1 AND purged_at IS NULL",
            before,
            now,
        )
        if count:
            await audit_trail.record(
                sql,
                at=now,
                actor_id=actor_id,
                action="retention.purged",
                object_type="messages",
                object_id=None,
                prison_id=None,
                after={"before": before.isoformat(), "messages": count, "files": files}
                | (
                    {"archive": kept.path, "archived": kept.messages, "sha256": kept.sha256}
                    if kept is not None
                    else {}
                ),
            )
    return count
