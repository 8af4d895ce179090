"""Supervisors' photos: stored re-encoded (``server/photos.py``), one row each, and set as the
supervisor's public profile photo in the same transaction, audited (``supervisor.photo``)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from storage import audit_trail
from storage.errors import NotFound
from storage.profiles import photo_url, profile_from
from storage.sql import Database, for_update


async def set_photo(
    db: Database,
    supervisor_id: int,
    jpeg: bytes,
    width: int,
    height: int,
    *,
    actor_id: int,
    now: datetime,
) -> str:
    """Database the photo and make it the supervisor's profile photo; its URL. ``NotFound``
    unless ``supervisor_id`` is a supervisor."""
    async with db.write() as sql:
        stored = await sql.fetchval(
            "SELECT profile FROM users WHERE id = $1 AND role = 'supervisor'" + for_update(db),
            supervisor_id,
        )
        if stored is None:
            raise NotFound(f"supervisor {supervisor_id}")
        photo_id: int = await sql.fetchval(
            "INSERT INTO photos (owner_id, content_type, data, width, height, created_at)"
            " VALUES ($1, 'image/jpeg', $2, $3, $4, $5) RETURNING id",
            supervisor_id,
            jpeg,
            width,
            height,
            now,
        )
        before = profile_from(sql.unjson(stored))
        url = photo_url(photo_id)
        after = msgspec.structs.replace(before, photo=url)
        await sql.execute(
            "UPDATE users SET profile = $1 WHERE id = $2", msgspec.to_builtins(after), supervisor_id
        )
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action="supervisor.photo",
            object_type="user",
            object_id=supervisor_id,
            prison_id=None,
            before={"photo": before.photo},
            after={"photo": url, "width": width, "height": height, "bytes": len(jpeg)},
        )
    return url


async def photo(db: Database, photo_id: int) -> tuple[str, bytes]:
    """A stored photo's type and bytes; ``NotFound``."""
    async with db.read() as sql:
        row = await sql.fetchrow("SELECT content_type, data FROM photos WHERE id = $1", photo_id)
    if row is None:
        raise NotFound(f"photo {photo_id}")
    return row["content_type"], bytes(row["data"])


async def owner(db: Database, photo_id: int) -> int | None:
    async with db.read() as sql:
        found: int | None = await sql.fetchval(
            "SELECT owner_id FROM photos WHERE id = $1", photo_id
        )
    return found
