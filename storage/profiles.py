"""A supervisor's public profile: what ``users.profile`` holds for supervisors.

Supervisors are published by name with their title, photo, address and phone; nothing else
about any user is public.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Short = Annotated[str, msgspec.Meta(max_length=200)]


class SupervisorProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    title: Short = ""  # e.g. "Party representative", "People's Congress deputy", "CPPCC member"
    photo: Short = ""  # a same-origin path (/static/photos/...) or a data: URL
    address: Short = ""
    phone: Short = ""


def profile_from(stored: object) -> SupervisorProfile:
    return msgspec.convert(stored or {}, SupervisorProfile)
