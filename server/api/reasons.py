"""The published reason codes over HTTP, and the check every refusing decision makes.

- ``GET /reasons?kind=``: the list (``domain/reasons.py``), anyone, no sign-in:
  ``{items: [{code, kind, text: {"zh-CN", "en"}}]}``.
- ``checked_reason(kind, code, text)``: what a decision handler stores. No code is ``other``;
  a code not listed for the kind is 400 ``unknown_reason_code`` (field ``reason_code``);
  ``other`` without free text is 400 ``invalid_request`` (field ``reason``), as a missing
  reason was before the list.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from domain.reasons import OTHER, DecisionKind, Reason, reason, reasons
from server.api.base import ApiError, Route, invalid, query, reply

UNKNOWN_REASON_CODE = "unknown_reason_code"

ReasonCode = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
FreeText = Annotated[str, msgspec.Meta(max_length=1000)]


class ReasonsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: DecisionKind | None = None


class ReasonList(msgspec.Struct, frozen=True):
    items: list[Reason]


def checked_reason(
    kind: DecisionKind, code: str | None, text: str | None
) -> tuple[str, str | None]:
    """``(code, free text or None)`` for a decision of ``kind``, or a 400 naming the field."""
    code = OTHER if code is None else code
    if reason(kind, code) is None:
        raise ApiError(
            400,
            UNKNOWN_REASON_CODE,
            f"{code!r} is not a published reason for {kind} (GET /api/v1/reasons)",
            field="reason_code",
        )
    free = (text or "").strip() or None
    if code == OTHER and free is None:
        raise invalid("reason", "say why, or pick a listed reason")
    return code, free


async def list_reasons(request: web.Request) -> web.Response:
    wanted = query(request, ReasonsQuery)
    return reply(ReasonList(reasons(wanted.kind)))


ROUTES = [
    Route(
        "GET",
        "/reasons",
        list_reasons,
        "The published reason codes a refusing decision carries (link.reject, link.revoke,"
        " visit.decline, complaint.close), each with its zh-CN and English text. Decisions"
        " take {reason_code, reason?}: an unlisted code is 400 unknown_reason_code, other"
        " without a reason 400 invalid_request",
        "anyone, no sign-in",
        query=ReasonsQuery,
        reply=ReasonList,
        errors=(400,),
    ),
]
