"""A supervisor's public profile: what ``users.profile`` holds for supervisors.

Supervisors are published by name with their title, photo, address and phone; nothing else
about any user is public.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from storage import audit_trail
from storage.errors import NotFound
from storage.sql import Database, for_update, utcnow

Short = Annotated[str, msgspec.Meta(max_length=200)]


class SupervisorProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    title: Short = ""  # e.g. "Party representative", "People's Congress deputy", "CPPCC member"
    photo: Short = ""  # a same-origin path (/static/photos/...) or a data: URL
    address: Short = ""
    phone: Short = ""


def profile_from(stored: object) -> SupervisorProfile:
    return msgspec.convert(stored or {}, SupervisorProfile)


# Where a photo may come from: a same-origin path or an inline image, never another site
# (a third-party image would tell that site who looks at the page) nor a script URL.
PHOTO_PREFIXES = ("/static/", "data:image/")


def photo_allowed(photo: str) -> bool:
    return photo == "" or photo.startswith(PHOTO_PREFIXES)


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
