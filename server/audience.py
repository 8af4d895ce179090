"""Telling: every domain event goes out through ``tell(hub, event)``, and nowhere else.

Handlers (the REST API, the send path, the duty roster, the gateway) describe what happened as
one of the events below and call ``tell``. Who is told is ``server/policy.py``'s decision
(section "who is told"); this module maps those recipients onto the hub's topics, encodes each
view of the frame once and publishes it. No other module names a topic to publish on.

- Topics: ``Watchers`` -> the conversation's topic, ordered by seq (``staff_only``: envelope
  audience ``s``, which the hub writes to staff sockets only); ``PrisonStaff`` and
  ``PrisonRelatives`` -> the prison's staff and relatives topics; ``BureauRelatives`` -> the
  bureau topic; ``Person`` -> the user's own topic. Listening is the complement, done by the
  gateway's joins over the same names (``channels/events.py``): every socket joins its user's
  topic; staff the staff topics of their prisons; relatives the relatives topics of their
  verified inmates' prisons and the bureau topic; anyone a conversation it may watch.
- Never awaits and never reads storage: the message event is told once per acked message, on
  the hot path. Facts a rule needs that only storage knows (a relative's verified inmates after
  a desk change, a complaint's candidate readers) are read by the caller and carried by the
  event.
- Delivery is the hub's (``channels/hub.py``): in order, once, repaired from storage on
  conversation topics; at most once, live, on the others (clients re-read over REST).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol, assert_never

import msgspec

from channels.envelope import ALL, STAFF
from channels.events import (
    BUREAU_TOPIC,
    conversation_topic,
    message_bytes,
    prison_relatives_topic,
    prison_staff_topic,
    user_topic,
)
from channels.protocol import (
    AnnouncementEvent,
    ComplaintEvent,
    ConversationEvent,
    InfoEvent,
    LinkEvent,
    OpeningEvent,
    PresenceEvent,
    ReadEvent,
    TypingEvent,
    UserRef,
    VisitEvent,
    encode,
)
from domain.records import FamilyLink, Message, User, Visit
from server.policy import (
    BureauRelatives,
    ComplaintFacts,
    Person,
    PrisonRelatives,
    PrisonStaff,
    Recipient,
    ThreadChange,
    Watchers,
    activity_audience,
    announcement_audience,
    card_audience,
    card_part_audience,
    complaint_recipients,
    consent_audience,
    link_audience,
    message_audience,
    notice_audience,
    opening_audience,
    presence_audience,
    thread_change_audience,
    visit_audience,
)


class Publisher(Protocol):
    """What telling needs of the hub."""

    def publish(self, topic: str, frame: bytes, *, seq: int = 0, audience_: str = "a") -> None:
        """Deliver the encoded frame on ``topic`` here and on every other process."""


# the events


class MessageStored(msgspec.Struct, frozen=True):
    """A message committed and acked (sent over a socket or REST, or a fact card)."""

    message: Message


class ThreadChanged(msgspec.Struct, frozen=True):
    """A thread's state changed. ``frame`` carries the staff side (a hand-over note)."""

    change: ThreadChange
    frame: ConversationEvent


class VisitRequested(msgspec.Struct, frozen=True):
    visit: Visit


class VisitDecided(msgspec.Struct, frozen=True):
    visit: Visit


class LinkDecided(msgspec.Struct, frozen=True):
    """A family link was verified, rejected or revoked (``link`` as it is now)."""

    link: FamilyLink


class CardUpdated(msgspec.Struct, frozen=True):
    """Parts of an inmate's information card changed; ``relatives``: its verified ones;
    ``shares``: the categories the inmate shares with each (``None``: all with everyone)."""

    inmate: int
    parts: Sequence[str]
    relatives: Sequence[int]
    shares: Mapping[int, Collection[str]] | None = None


class ComplaintChanged(msgspec.Struct, frozen=True):
    """A complaint was filed or moved; ``candidates``: the users who might see it."""

    frame: ComplaintEvent
    complaint: ComplaintFacts
    candidates: Sequence[User]


class PresenceChanged(msgspec.Struct, frozen=True):
    """The officers on duty in a prison: ``on_duty`` of them, ``officers`` named (the first
    ones, for staff)."""

    prison: int
    on_duty: int
    officers: list[UserRef]


class AnnouncementPosted(msgspec.Struct, frozen=True):
    frame: AnnouncementEvent


class NoticeSent(msgspec.Struct, frozen=True):
    """A notice stored for one relative (its link ended by a release, a transfer), told
    live as an ``announcement`` frame on its own topic."""

    relative: int
    frame: AnnouncementEvent


class ConsentRecorded(msgspec.Struct, frozen=True):
    """The inmate's decision of what one relative may learn was recorded: told to that
    relative as ``info {inmate, field: "consent"}``, so its pages read the card again."""

    inmate: int
    relative: int


class Typed(msgspec.Struct, frozen=True):
    """``user`` is typing in ``conv`` (already throttled by the caller)."""

    conv: int
    user: UserRef


class ReadMarked(msgspec.Struct, frozen=True):
    conv: int
    user: int
    seq: int


class ConversationOpened(msgspec.Struct, frozen=True):
    """A supervisor's opening of a conversation was audited (``frame`` says who and when)."""

    frame: OpeningEvent


Event = (
    MessageStored
    | ThreadChanged
    | VisitRequested
    | VisitDecided
    | LinkDecided
    | CardUpdated
    | ComplaintChanged
    | PresenceChanged
    | AnnouncementPosted
    | NoticeSent
    | ConsentRecorded
    | Typed
    | ReadMarked
    | ConversationOpened
)


def tell(hub: Publisher, event: Event) -> None:
    """Publish ``event`` to everyone the policy says is told of it. Never blocks, never fails
    the caller (the hub counts broker errors and other processes repair from storage)."""
    if isinstance(event, MessageStored):  # the hot path: once per acked message, no match
        message = event.message
        watchers = message_audience(message.conversation_id, message.kind)
        hub.publish(
            conversation_topic(watchers.conv),
            message_bytes(message),
            seq=message.seq,
            audience_=STAFF if watchers.staff_only else ALL,
        )
        return
    match event:
        case ThreadChanged(change, frame):
            told = thread_change_audience(change)
            data = encode(frame)
            _publish(hub, (told.staff,), data)
            public = data if frame.note is None else encode(_without_note(frame))
            if told.relative is not None:
                _publish(hub, (told.relative,), public)
            if told.members:  # a family case's other readers (issue 15)
                _publish(hub, told.members, public)
        case VisitRequested(visit) | VisitDecided(visit):
            decided = isinstance(event, VisitDecided)
            _publish(hub, visit_audience(visit, decided=decided), encode(_visit_frame(visit)))
        case LinkDecided(link):
            decision = LinkEvent(
                id=link.id, state=link.state, reason=link.reason, reason_code=link.reason_code
            )
            _publish(hub, link_audience(link), encode(decision))
        case CardUpdated(inmate, parts, relatives, shares):
            for part in parts:
                to = (
                    card_audience(relatives)
                    if shares is None
                    else card_part_audience(relatives, part, shares)
                )
                _publish(hub, to, encode(InfoEvent(inmate=inmate, field=part)))
        case ComplaintChanged(frame, complaint, candidates):
            _publish(hub, complaint_recipients(complaint, candidates), encode(frame))
        case PresenceChanged(prison, on_duty, officers):
            present = presence_audience(prison)
            _publish(hub, (present.named,), encode(PresenceEvent(prison, on_duty, officers)))
            _publish(hub, (present.counted,), encode(PresenceEvent(prison, on_duty)))
        case AnnouncementPosted(frame):
            _publish(hub, (announcement_audience(frame.prison),), encode(frame))
        case NoticeSent(relative, frame):
            _publish(hub, (notice_audience(relative),), encode(frame))
        case ConsentRecorded(inmate, relative):
            _publish(
                hub, consent_audience(relative), encode(InfoEvent(inmate=inmate, field="consent"))
            )
        case Typed(conv, user):
            _publish(hub, (activity_audience(conv),), encode(TypingEvent(conv=conv, user=user)))
        case ReadMarked(conv, user, seq):
            mark = ReadEvent(conv=conv, user=user, seq=seq)
            _publish(hub, (activity_audience(conv),), encode(mark))
        case ConversationOpened(frame):
            _publish(hub, (opening_audience(frame.conv),), encode(frame))
        case _:
            assert_never(event)


def _publish(hub: Publisher, recipients: Sequence[Recipient], data: bytes) -> None:
    """Unordered events (seq 0): the same bytes to each recipient's topic."""
    for recipient in recipients:
        staff_only = isinstance(recipient, Watchers) and recipient.staff_only
        hub.publish(topic_of(recipient), data, audience_=STAFF if staff_only else ALL)


def topic_of(recipient: Recipient) -> str:
    """The hub topic a recipient group listens on."""
    match recipient:
        case Watchers(conv):
            return conversation_topic(conv)
        case PrisonStaff(prison):
            return prison_staff_topic(prison)
        case PrisonRelatives(prison):
            return prison_relatives_topic(prison)
        case BureauRelatives():
            return BUREAU_TOPIC
        case Person(user):
            return user_topic(user)
        case _:
            assert_never(recipient)


def _without_note(frame: ConversationEvent) -> ConversationEvent:
    return msgspec.structs.replace(frame, note=None)


def _visit_frame(visit: Visit) -> VisitEvent:
    return VisitEvent(
        id=visit.id,
        inmate=visit.inmate_id,
        state=visit.state,
        slot_start=visit.slot_start,
        reason=visit.reason,
    )
