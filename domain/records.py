"""The domain's records: what storage returns, channels carry and the policy decides on.

They are plain frozen ``msgspec`` Structs (at most a derived property) with no knowledge of
where they are kept, so ``storage/``, ``channels/`` and ``server/policy.py`` all depend on this
module and none of them on another for its vocabulary.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import msgspec

Role = Literal["relative", "officer", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("relative", "officer", "supervisor", "admin")
STAFF_ROLES: frozenset[str] = frozenset({"officer", "supervisor", "admin"})
MessageKind = Literal["text", "note", "system"]
ConversationState = Literal["new", "waiting", "active", "resolved"]
LinkState = Literal["pending", "verified", "rejected", "revoked"]
# What a new message did to its conversation: ``opened`` a question cycle (a relative's text
# while the thread was new or resolved) or ``claimed`` the thread (an officer's text answering
# a waiting question nobody held); None for anything else.
Effect = Literal["opened", "claimed"]


class Prison(msgspec.Struct, frozen=True):
    id: int
    code: str
    name: str
    city: str = ""


class User(msgspec.Struct, frozen=True):
    id: int
    role: Role
    login: str
    name: str
    prison_ids: tuple[int, ...] = ()
    phone: str | None = None


class Inmate(msgspec.Struct, frozen=True):
    id: int
    prison_id: int
    number: str
    name: str


class Conversation(msgspec.Struct, frozen=True):
    id: int
    prison_id: int
    inmate_id: int
    relative_id: int
    state: ConversationState
    assigned_officer_id: int | None
    last_seq: int
    created_at: datetime


class Attachment(msgspec.Struct, frozen=True):
    """A file uploaded for a message or a link request (``storage/attachments.py``): what it
    is (type judged from its content, size in bytes, a display name, the SHA-256 of the
    stored bytes) and what it belongs to. ``object_key``/``thumb_key`` name its bytes in the
    object store and never leave the server."""

    id: int
    owner_id: int
    content_type: str
    name: str
    size: int
    sha256: str
    object_key: str
    created_at: datetime
    width: int | None = None
    height: int | None = None
    thumb_key: str | None = None
    conversation_id: int | None = None  # bound to the message (conversation, owner, cid)
    cid: str | None = None
    message_id: int | None = None  # set in the message's own transaction
    link_id: int | None = None  # evidence of a link request


class NewMessage(msgspec.Struct, frozen=True):
    """A message to append. ``sender_name`` is not stored; it is echoed into the result.
    ``flags``: the keyword categories the body matched (``domain/keywords.py``), comma-joined
    and sorted, stored with the message for staff review; never in a frame or a hash."""

    conversation_id: int
    sender_id: int
    sender_role: Role
    cid: str
    body: str
    kind: MessageKind = "text"
    sender_name: str = ""
    attachments: tuple[Attachment, ...] = ()  # bound to (conversation, sender, cid) already
    flags: str | None = None


class Message(msgspec.Struct, frozen=True):
    id: int
    conversation_id: int
    seq: int
    sender_id: int
    sender_role: Role
    sender_name: str
    cid: str
    kind: MessageKind
    body: str
    created_at: datetime
    attachments: tuple[Attachment, ...] = ()


class Appended(msgspec.Struct, frozen=True):
    message: Message
    created: bool  # False when (conversation, sender, cid) was already stored
    # New messages only (None for a repeat): what the message did to its conversation's life
    # cycle, as the database decided it in the append's own transaction (migration 0007), and
    # the cycle the message belongs to once it was stored.
    effect: Effect | None = None
    cycle: int | None = None


class AuditEntry(msgspec.Struct, frozen=True):
    id: int
    at: datetime
    actor_id: int | None
    action: str
    object_type: str
    object_id: int | None
    prison_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class LinkClaim(msgspec.Struct, frozen=True):
    """What a relative claims when asking to be linked. ``prison_id``/``inmate_id`` are set only
    when the claim names a real prison/inmate; the request is stored either way."""

    relative_id: int
    prison_claim: str  # the prison as the relative named it (code or id)
    inmate_number: str
    relationship: str
    evidence: str
    prison_id: int | None = None
    inmate_id: int | None = None

    @property
    def claim_key(self) -> str:
        """Names the claim, matched or not: one pending request per relative and claim."""
        where = f"p{self.prison_id}" if self.prison_id is not None else f"c{self.prison_claim}"
        return f"{where}|{self.inmate_number}"


class FamilyLink(msgspec.Struct, frozen=True):
    id: int
    relative_id: int
    prison_id: int | None
    prison_claim: str
    inmate_number: str
    inmate_id: int | None  # None: the claim names no inmate of that prison (unmatched)
    relationship: str
    evidence: str
    state: LinkState
    reason: str | None
    decided_by: int | None
    decided_at: datetime | None
    created_at: datetime
    relative_name: str = ""
    relative_phone: str | None = None
    relative_id_last4: str | None = None
    # another account gave the same id number: the officer checks documents before deciding
    relative_id_conflict: bool = False
    reason_code: str | None = None  # a rejection's or revocation's (domain/reasons.py)


VisitState = Literal["pending", "approved", "declined", "cancelled"]


class Visit(msgspec.Struct, frozen=True):
    id: int
    inmate_id: int
    prison_id: int
    relative_id: int
    relative_name: str
    slot_start: datetime
    visitors: int
    visitor_names: list[str]
    state: VisitState
    reason: str | None
    decided_by: int | None
    decided_at: datetime | None
    created_at: datetime
    reason_code: str | None = None  # a decline's (domain/reasons.py)


# -- consent and the family case (issue 15) ----------------------------------------------------

ConsentCategory = Literal["activity", "work", "health", "term", "money", "visits"]
CONSENT_CATEGORIES: tuple[ConsentCategory, ...] = (
    "activity",
    "work",
    "health",
    "term",
    "money",
    "visits",
)


class Consent(msgspec.Struct, frozen=True):
    """What an inmate agreed to share with one relative, as an officer recorded it."""

    inmate_id: int
    relative_id: int
    categories: tuple[ConsentCategory, ...]  # in card order
    decided_on: date
    witness: str
    note: str
    recorded_by: int
    recorded_at: datetime


class FamilyCase(msgspec.Struct, frozen=True):
    """The inmate's agreement that its verified relatives share one conversation."""

    inmate_id: int
    conversation_id: int
    enabled: bool
    decided_on: date
    witness: str
    note: str
    recorded_by: int
    recorded_at: datetime
