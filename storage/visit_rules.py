"""A prison's visit rules: what ``prisons.visit_rules`` holds, public on the prison's page.

Times are in the bureau's local time zone (``Settings.timezone``). The visits area checks a
request against these rules; the public page shows them as they are.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Clock = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]  # "09:30"
Item = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Hours(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    start: Clock
    end: Clock


class VisitRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    days: list[Annotated[int, msgspec.Meta(ge=1, le=7)]] = []  # ISO weekdays: 1 = Monday
    hours: list[Hours] = []  # a visit must start within one of these windows
    min_days_between: Annotated[int, msgspec.Meta(ge=0, le=366)] = 30  # per inmate
    max_visitors: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    allowed_items: list[Item] = []
    forbidden_items: list[Item] = []
    notes: Annotated[str, msgspec.Meta(max_length=2000)] = ""


def rules_from(stored: object) -> VisitRules:
    """The rules as stored (a decoded JSON object; ``{}`` means the defaults)."""
    return msgspec.convert(stored or {}, VisitRules)
