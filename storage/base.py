"""The storage contract: records, errors and the narrow ``Store`` protocol.

Two implementations keep to it, ``SqliteStore`` (the embedded default) and ``PostgresStore``
(production, shared by every server process); one contract suite (``tests/test_store_contract.py``)
runs against both.

Guarantees every implementation gives:

- ``append_messages`` is atomic per call: every new message of the batch is committed, or none.
  A conversation's ``seq`` is assigned under a lock on the conversation row inside the insert
  transaction, so seqs run 1, 2, 3... with no gap and no duplicate, however many processes
  append at once (a database sequence would be allocated before commit and could skip).
- ``(conversation, sender, cid)`` is unique: appending it again returns the stored message with
  ``created=False``; it never makes a second one.
- Any failure to reach the database surfaces as ``StoreUnavailable`` (never a driver exception),
  so callers can answer ``unavailable`` and must not acknowledge anything.
- Audit entries are append-only: there is no update or delete for them, and the schema refuses
  both with a trigger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec

from storage.sql import Database

Role = Literal["relative", "officer", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("relative", "officer", "supervisor", "admin")
STAFF_ROLES: frozenset[str] = frozenset({"officer", "supervisor", "admin"})
MessageKind = Literal["text", "note", "system"]
ConversationState = Literal["new", "waiting", "active", "resolved"]
LinkState = Literal["pending", "verified", "rejected", "revoked"]


class StoreError(Exception):
    """Base of every error a store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or did not answer in time. Nothing was committed."""


class NotFound(StoreError):
    """The object does not exist."""


class Conflict(StoreError):
    """A uniqueness rule was broken (duplicate login, prison code, inmate number...)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


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


class NewMessage(msgspec.Struct, frozen=True):
    """A message to append. ``sender_name`` is not stored; it is echoed into the result."""

    conversation_id: int
    sender_id: int
    sender_role: Role
    cid: str
    body: str
    kind: MessageKind = "text"
    sender_name: str = ""


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


class Appended(msgspec.Struct, frozen=True):
    message: Message
    created: bool  # False when (conversation, sender, cid) was already stored
    # New messages only (None for a repeat): the conversation's state just before this
    # message was stored, and its cycle once it was. A relative's text with ``prev_state``
    # ``new`` or ``resolved`` started cycle ``cycle`` (the life-cycle trigger, migration 0003).
    prev_state: ConversationState | None = None
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


class Store(Protocol):
    """What the server needs from a database, and nothing more."""

    @property
    def db(self) -> Database:
        """Portable SQL for the areas written once over both stores (``storage/sql.py``)."""

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied (empty when up to date)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers."""

    # prisons, staff, inmates
    async def add_prison(self, code: str, name: str, city: str = "") -> Prison: ...
    async def prison_by_code(self, code: str) -> Prison: ...
    async def add_user(
        self,
        role: Role,
        login: str,
        name: str,
        password_hash: str,
        prison_ids: Sequence[int] = (),
        phone: str | None = None,
    ) -> User: ...
    async def user(self, user_id: int) -> User: ...
    async def credentials(self, login: str) -> tuple[User, str]:
        """The user with this login and its password hash; ``NotFound`` if none."""

    async def add_inmate(self, prison_id: int, number: str, name: str) -> Inmate: ...
    async def inmate(self, inmate_id: int) -> Inmate: ...

    # family links
    async def request_link(
        self, relative_id: int, inmate_id: int, relationship: str, evidence: str
    ) -> int:
        """A pending link request; ``Conflict`` if one is already pending or verified."""

    async def decide_link(
        self, link_id: int, state: LinkState, decided_by: int, reason: str | None
    ) -> None: ...
    async def verified_inmates(self, relative_id: int) -> frozenset[int]: ...

    # sessions (tokens are stored only as hashes)
    async def create_session(
        self, user_id: int, token_hash: bytes, expires_at: datetime
    ) -> None: ...
    async def session_user(self, token_hash: bytes, now: datetime) -> User | None:
        """The user of a live (unexpired, unrevoked) session, else None."""

    async def revoke_session(self, token_hash: bytes) -> None: ...

    # conversations and messages
    async def open_conversation(self, relative_id: int, inmate_id: int) -> Conversation:
        """The thread between this relative and the inmate's prison; created on first use."""

    async def conversation(self, conversation_id: int) -> Conversation: ...
    async def conversations_of(self, relative_id: int) -> list[Conversation]: ...
    async def append_messages(self, items: Sequence[NewMessage]) -> list[Appended | None]:
        """Append in one transaction; ``None`` for an item whose conversation does not exist."""

    async def messages(
        self,
        conversation_id: int,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
        include_notes: bool = True,
    ) -> list[Message]:
        """Messages in ascending ``seq``: the first ``limit`` after ``after``, or else the last
        ``limit`` before ``before`` (or the latest when neither is given)."""

    async def last_seqs(self, conversation_ids: Sequence[int]) -> dict[int, int]: ...

    # read cursors (only ever move forward)
    async def mark_read(self, conversation_id: int, user_id: int, seq: int) -> bool:
        """Move the user's cursor to ``seq``; False if it was already there or further."""

    async def read_cursors(self, conversation_id: int) -> dict[int, int]: ...

    # audit trail (append-only)
    async def audit(
        self,
        actor_id: int | None,
        action: str,
        object_type: str,
        object_id: int | None,
        prison_id: int | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> AuditEntry: ...
    async def audit_entries(
        self,
        *,
        prison_id: int | None = None,
        actor_id: int | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]: ...

    # accounts and family verification
    async def add_relative(
        self,
        phone: str,
        name: str,
        password_hash: str,
        id_number_hash: bytes,
        id_number_last4: str,
    ) -> User:
        """A relative whose login is its phone. ``Conflict`` whose ``what`` names ``login`` or
        ``id_number_hash`` when either is taken."""

    async def set_password_hash(self, user_id: int, password_hash: str) -> None: ...
    async def id_number_last4(self, user_id: int) -> str | None: ...
    async def users(self, *, role: Role | None = None, limit: int = 100) -> list[User]:
        """Users by ascending id, optionally of one role."""

    async def revoke_user_sessions(self, user_id: int) -> int:
        """Revoke every live session of a user; the number revoked."""

    async def prison(self, prison_id: int) -> Prison: ...
    async def prisons(self) -> list[Prison]: ...
    async def inmate_by_number(self, prison_id: int, number: str) -> Inmate | None: ...
    async def claim_link(self, claim: LinkClaim) -> FamilyLink:
        """Store a pending request as claimed; ``Conflict`` if the relative already has one
        pending for the same claim, or one pending or verified for the same inmate."""

    async def link(self, link_id: int) -> FamilyLink: ...
    async def links(
        self,
        *,
        relative_id: int | None = None,
        prison_ids: Sequence[int] | None = None,
        state: LinkState | None = None,
        limit: int = 100,
    ) -> list[FamilyLink]:
        """Links by ascending id, filtered by whichever of the arguments are given."""

    async def transition_link(
        self,
        link_id: int,
        from_state: LinkState,
        to_state: LinkState,
        decided_by: int,
        reason: str | None,
    ) -> FamilyLink:
        """Move a link from ``from_state`` to ``to_state`` and append its audit entry
        (``link.<to_state>``, actor ``decided_by``, before and after) in one transaction.
        ``NotFound`` if there is no such link, ``Conflict("state")`` if it is not in
        ``from_state``."""
