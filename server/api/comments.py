"""Comments on announcements over HTTP (issue 16), as official-account article comments are.

- ``POST /announcements/{id}/comments {body}``: a verified relative (of the announcement's
  prison, or any for a bureau-wide one) comments; the comment is ``pending`` (201).
- ``GET /announcements/{id}/comments``: the approved comments, to anyone; the caller's own in
  any state (its pending one shows as pending to it alone); a moderator sees every state.
  Others see an author as its surname and stars (the moderators and the author in full).
- ``GET /comments?state=pending|approved|rejected&before=&limit=``: the moderation queue:
  an officer its prisons' announcements', the admin every one's (bureau-wide included).
- ``POST /comments/{id}/approve`` and ``/reject``: once (409 ``conflict`` when decided
  already), audited.
Rules: ``server/policy.py`` (``check_comment_post``, ``check_comment_moderation``,
``sees_comment``, ``comment_moderation_scope``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from server.api.base import (
    ApiError,
    Handler,
    Id,
    PublicLimit,
    Route,
    body,
    path_id,
    principal,
    query,
    reply,
)
from server.keys import DB
from server.policy import (
    Principal,
    check_comment_moderation,
    check_comment_post,
    comment_moderation_scope,
    moderates_comments,
    sees_comment,
)
from storage import comments
from storage.comments import Comment, CommentState, Decision
from storage.errors import NotFound
from storage.sql import utcnow

CommentBody = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class CommentIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    body: CommentBody


class CommentOut(msgspec.Struct, frozen=True):
    id: int
    announcement_id: int
    announcement_title: str
    prison_id: int | None
    author: str  # the name, or its surname and stars to others than the author and moderators
    own: bool  # written by the caller
    body: str
    state: CommentState
    at: datetime
    decided_at: datetime | None


class CommentList(msgspec.Struct, frozen=True):
    items: list[CommentOut]


class QueueQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: CommentState = "pending"
    before: Id | None = None
    limit: PublicLimit = 50


def masked(name: str) -> str:
    """``Chen Mei`` -> ``C*******``: the first character and a star per other one."""
    return name[:1] + "*" * max(0, len(name) - 1)


def _out(comment: Comment, who: Principal | None) -> CommentOut:
    own = who is not None and who.id == comment.author_id
    full = own or (who is not None and moderates_comments(who, comment.prison_id))
    return CommentOut(
        comment.id,
        comment.announcement_id,
        comment.announcement_title,
        comment.prison_id,
        comment.author_name if full else masked(comment.author_name),
        own,
        comment.body,
        comment.state,
        comment.created_at,
        comment.decided_at,
    )


async def _prison_of(request: web.Request, announcement_id: int) -> int | None:
    try:
        return await comments.announcement_prison(request.app[DB], announcement_id)
    except NotFound:
        raise ApiError(404, "not_found", "no such announcement") from None


async def post_comment(request: web.Request) -> web.Response:
    announcement_id = path_id(request)
    who = await principal(request)
    prison = await _prison_of(request, announcement_id)
    who = check_comment_post(who, prison)
    form = await body(request, CommentIn)
    text = form.body.strip()
    if not text:
        raise ApiError(400, "invalid_request", "a comment has some text", field="body")
    try:
        made = await comments.post(request.app[DB], announcement_id, who.id, text, utcnow())
    except NotFound:
        raise ApiError(404, "not_found", "no such announcement") from None
    return reply(_out(made, who), 201)


async def list_comments(request: web.Request) -> web.Response:
    announcement_id = path_id(request)
    who = await principal(request)
    prison = await _prison_of(request, announcement_id)
    everything = who is not None and moderates_comments(who, prison)
    found = await comments.of_announcement(
        request.app[DB], announcement_id, viewer_id=who.id if who else None, everything=everything
    )
    shown = [c for c in found if sees_comment(who, c.author_id, c.state, c.prison_id)]
    return reply(CommentList([_out(c, who) for c in shown]))


async def moderation_queue(request: web.Request) -> web.Response:
    who = await principal(request)
    scope = comment_moderation_scope(who)
    wanted = query(request, QueueQuery)
    found = await comments.moderation_queue(
        request.app[DB], scope, wanted.state, before=wanted.before, limit=wanted.limit
    )
    return reply(CommentList([_out(c, who) for c in found]))


def _decider(decision: Decision) -> Handler:
    async def decide(request: web.Request) -> web.Response:
        comment_id = path_id(request)
        who = await principal(request)
        store = request.app[DB]
        try:
            found = await comments.comment(store, comment_id)
        except NotFound:
            found = None
        who = check_comment_moderation(who, found.prison_id if found else None)
        if found is None:
            raise ApiError(404, "not_found", "no such comment")
        try:
            decided = await comments.decide(store, comment_id, decision, who.id, utcnow())
        except NotFound:
            raise ApiError(404, "not_found", "no such comment") from None
        except comments.WrongState as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        return reply(_out(decided, who))

    return decide


ROUTES = [
    Route(
        "GET",
        "/announcements/{id}/comments",
        list_comments,
        "An announcement's comments, oldest first: approved ones; the caller's own in any"
        " state; every state to its moderators",
        "anyone (no sign-in: approved only)",
        reply=CommentList,
        errors=(404,),
    ),
    Route(
        "POST",
        "/announcements/{id}/comments",
        post_comment,
        "Comment on an announcement: pending until an officer of its prison or the admin"
        " approves it (audited comment.posted)",
        "relative verified for an inmate of the announcement's prison (bureau-wide: any"
        " verified relative)",
        body=CommentIn,
        reply=CommentOut,
        status=201,
        errors=(400, 401, 403, 404),
    ),
    Route(
        "GET",
        "/comments",
        moderation_queue,
        "The moderation queue: comments in a state (default pending), newest first",
        "officer: its prisons' announcements; admin: every one",
        query=QueueQuery,
        reply=CommentList,
        errors=(400, 401, 403),
    ),
    Route(
        "POST",
        "/comments/{id}/approve",
        _decider("approved"),
        "Approve a pending comment: shown to everyone (audited comment.approved)",
        "officer of the announcement's prison; admin (others: 404 or 403)",
        reply=CommentOut,
        errors=(401, 403, 404, 409),
    ),
    Route(
        "POST",
        "/comments/{id}/reject",
        _decider("rejected"),
        "Reject a pending comment: shown to its author alone (audited comment.rejected)",
        "officer of the announcement's prison; admin (others: 404 or 403)",
        reply=CommentOut,
        errors=(401, 403, 404, 409),
    ),
]
