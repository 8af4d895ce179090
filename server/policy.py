"""Authorization, decided here and only here: may this principal do this action on this object?

Called by the REST handlers and the WebSocket gateway alike; tested as a matrix
(``tests/test_policy_matrix.py``). Denials carry the stable error code the caller returns:
an object the principal may not see is ``not_found`` (the same answer as one that does not
exist, so ids cannot be probed); a visible object with a forbidden action is ``forbidden``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from storage.base import STAFF_ROLES, Conversation, User

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
