"""Authorization, decided here and only here: may this principal do this action on this object?

Called by the REST handlers and the WebSocket gateway alike; tested as a matrix
(``tests/test_policy_matrix.py``). Denials carry the stable error code the caller returns:
an object the principal may not see is ``not_found`` (the same answer as one that does not
exist, so ids cannot be probed); a visible object with a forbidden action is ``forbidden``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from storage.base import STAFF_ROLES, Conversation, FamilyLink, User

ConversationAction = Literal["read", "send", "note", "typing", "mark_read", "watch"]

# What each role may do with a conversation it can see.
CONVERSATION_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset({"read", "send", "typing", "mark_read", "watch"}),
    "officer": frozenset({"read", "send", "note", "typing", "mark_read", "watch"}),
    "supervisor": frozenset({"read", "watch"}),  # watch live, read-only, leaves no read mark
    "admin": frozenset(),
}


class Denied(Exception):
    def __init__(self, code: Literal["not_found", "forbidden"], message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Principal:
    """A signed-in user and the facts its permissions depend on."""

    user: User
    verified_inmates: frozenset[int] = frozenset()

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def is_staff(self) -> bool:
        return self.user.role in STAFF_ROLES


def sees_conversation(who: Principal, conv: Conversation) -> bool:
    role = who.user.role
    if role == "relative":
        return conv.relative_id == who.id and conv.inmate_id in who.verified_inmates
    if role in ("officer", "supervisor"):
        return conv.prison_id in who.user.prison_ids
    return False


def check_conversation(who: Principal, conv: Conversation, action: ConversationAction) -> None:
    if not sees_conversation(who, conv):
        raise Denied("not_found", "no such conversation")
    if action not in CONVERSATION_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not {action.replace('_', ' ')} here")


# Accounts, family links and administration (REST). Anyone may register and log in; every
# other action needs a principal (``NotSignedIn`` -> 401 ``not_authenticated``).


class NotSignedIn(Exception):
    """No live session: answered 401 ``not_authenticated``."""


ALL_ROLES: frozenset[str] = frozenset({"relative", "officer", "supervisor", "admin"})

# Actions that name no object, and the roles that may take them.
ApiAction = Literal["session", "link.request", "link.list", "admin"]
API_ACTIONS: dict[str, frozenset[str]] = {
    "session": ALL_ROLES,  # who am I, log out
    "link.request": frozenset({"relative"}),
    "link.list": ALL_ROLES,  # each sees its own scope (link_scope)
    "admin": frozenset({"admin"}),  # prisons, staff accounts, session revocation
}

LinkAction = Literal["read", "verify", "reject", "revoke"]
# What each role may do with a link it can see.
LINK_ACTIONS: dict[str, frozenset[str]] = {
    "relative": frozenset({"read"}),
    "officer": frozenset({"read", "verify", "reject", "revoke"}),
    "supervisor": frozenset({"read", "revoke"}),
    "admin": frozenset({"read", "revoke"}),
}


def signed_in(who: Principal | None) -> Principal:
    if who is None:
        raise NotSignedIn("sign in first")
    return who


def check_action(who: Principal | None, action: ApiAction) -> Principal:
    """The principal if it may take ``action``; ``NotSignedIn`` or ``Denied("forbidden")``."""
    who = signed_in(who)
    if who.user.role not in API_ACTIONS[action]:
        raise Denied("forbidden", f"a {who.user.role} may not do this")
    return who


def sees_link(who: Principal, link: FamilyLink) -> bool:
    role = who.user.role
    if role == "relative":
        return link.relative_id == who.id
    if role in ("officer", "supervisor"):
        return link.prison_id is not None and link.prison_id in who.user.prison_ids
    return role == "admin"


def check_link(who: Principal | None, link: FamilyLink | None, action: LinkAction) -> FamilyLink:
    """The link if ``who`` may do ``action`` on it. ``None`` (no such link) and a link it may
    not see get the same ``not_found``."""
    who = signed_in(who)
    if link is None or not sees_link(who, link):
        raise Denied("not_found", "no such link request")
    if action not in LINK_ACTIONS[who.user.role]:
        raise Denied("forbidden", f"a {who.user.role} may not {action} a link request")
    return link


@dataclass(frozen=True)
class LinkScope:
    """Which links a principal lists: ``None`` fields do not filter."""

    relative_id: int | None = None
    prison_ids: tuple[int, ...] | None = None


def link_scope(who: Principal | None) -> LinkScope:
    who = check_action(who, "link.list")
    if who.user.role == "relative":
        return LinkScope(relative_id=who.id)
    if who.user.role in ("officer", "supervisor"):
        return LinkScope(prison_ids=who.user.prison_ids)
    return LinkScope()  # admin: the whole bureau


def shows_link_details(who: Principal, link: FamilyLink) -> bool:
    """Whether ``who`` is shown the inmate a link matched and the relative's identity: staff
    always; a relative only its inmate, and only once verified (an answer to a request must
    not tell whether the inmate exists)."""
    return who.is_staff or link.state == "verified"
