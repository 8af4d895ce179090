"""A supervisor's public profile: what ``users.profile`` holds for supervisors.

Supervisors are published by name with their title, photo, address and phone; nothing else
about any user is public.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec

from storage import audit_trail
from storage.errors import NotFound
from storage.sql import Database, for_update, utcnow

Short = Annotated[str, msgspec.Meta(max_length=200)]


class SupervisorProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    title: Short = ""  # e.g. "Party representative", "People's Congress deputy", "CPPCC member"
    photo: Short = ""  # an uploaded photo (/api/v1/photos/<id>) or a bundled /static/photos/ one
    address: Short = ""
    phone: Short = ""


def profile_from(stored: object) -> SupervisorProfile:
    return msgspec.convert(stored or {}, SupervisorProfile)


# Where a photo may come from: an uploaded photo's own URL (``/api/v1/photos/<id>``, stored
# re-encoded with no metadata: ``server/photos.py``) or one of the bundled pictures under
# /static/photos/ (the demo's), matched whole. Never another site (a third-party image would
# tell that site who looks at the page), a script or data: URL, nor a path that only starts
# like one (``/static/../api/v1/me`` is the caller's own account, not a picture).
UPLOADED_PHOTO = re.compile(r"^/api/v1/photos/([1-9][0-9]{0,18})$")
BUNDLED_PHOTO = re.compile(
    r"^/static/photos/[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\.(svg|png|jpe?g|webp)$"
)


def photo_url(photo_id: int) -> str:
    return f"/api/v1/photos/{photo_id}"


def uploaded_photo_id(photo: str) -> int | None:
    """The id in an uploaded photo's URL, or None."""
    found = UPLOADED_PHOTO.fullmatch(photo)
    return int(found.group(1)) if found else None


def photo_allowed(photo: str) -> bool:
    """The shape of an acceptable photo URL (whose upload it is, the caller checks)."""
    return photo == "" or bool(UPLOADED_PHOTO.fullmatch(photo) or BUNDLED_PHOTO.fullmatch(photo))


async def set_supervisor_profile(
    db: Database,
    supervisor_id: int,
    profile: SupervisorProfile,
    *,
    actor_id: int | None = None,
    now: datetime | None = None,
) -> SupervisorProfile:
    """Replace a supervisor's public profile, audited in the same transaction
    (``supervisor.profile``, object ``user``, before and after; no prison: the profile belongs
    to the person, whichever prisons it supervises). ``actor_id`` None: the system (the demo
    seed). ``NotFound`` unless ``supervisor_id`` is a supervisor."""
    at = now or utcnow()
    after = msgspec.to_builtins(profile)
    async with db.write() as sql:
        stored = await sql.fetchval(
            "SELECT profile FROM users WHERE id = $1 AND role = 'supervisor'" + for_update(db),
            supervisor_id,
        )
        if stored is None:
            raise NotFound(f"supervisor {supervisor_id}")
        before = msgspec.to_builtins(profile_from(sql.unjson(stored)))
        await sql.execute("UPDATE users SET profile = $1 WHERE id = $2", after, supervisor_id)
        await audit_trail.record(
            sql,
            at=at,
            actor_id=actor_id,
            action="supervisor.profile",
            object_type="user",
            object_id=supervisor_id,
            prison_id=None,
            before=before,
            after=after,
        )
    return profile
