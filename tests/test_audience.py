"""Who is told of each event: ``server/audience.py`` over the policy, as tables (no sockets).

Each row is one domain event and exactly what it publishes: (topic, envelope audience, seq,
frame). A recording hub stands in for ``channels.hub.Hub``; the delivery itself (topics to
sockets, staff-only envelopes, ordering) is ``tests/test_hub.py``'s, and the end-to-end
effect is checked over real sockets in ``tests/test_realtime.py``, ``test_desk.py``,
``test_visits.py``, ``test_links.py``, ``test_inmate_info.py``, ``test_complaints.py``,
``test_announcements.py`` and ``test_presence.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from channels import envelope
from channels.events import audience as envelope_audience
from channels.events import message_event
from channels.protocol import (
    AnnouncementEvent,
    ComplaintEvent,
    ConversationEvent,
    InfoEvent,
    LinkEvent,
    PresenceEvent,
    ProtocolError,
    ReadEvent,
    ServerFrame,
    TypingEvent,
    UserRef,
    VisitEvent,
    decode_server,
)
from domain.records import Conversation, FamilyLink, Message, MessageKind, Role, User, Visit
from server.audience import (
    AnnouncementPosted,
    CardUpdated,
    ComplaintChanged,
    ConsentRecorded,
    Event,
    LinkDecided,
    MessageStored,
    PresenceChanged,
    ReadMarked,
    ThreadChanged,
    Typed,
    VisitDecided,
    VisitRequested,
    tell,
    topic_of,
)
from server.policy import (
    BureauRelatives,
    ComplaintFacts,
    Person,
    PresenceAudience,
    PrisonRelatives,
    PrisonStaff,
    Recipient,
    ThreadAudience,
    ThreadChange,
    Watchers,
    activity_audience,
    announcement_audience,
    card_audience,
    complaint_recipients,
    link_audience,
    message_audience,
    presence_audience,
    thread_change_audience,
    visit_audience,
)

AT = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
GM, SS = 1, 2  # prisons
RELATIVE, OFFICER = 100, 10
CONV = Conversation(7, GM, 70, RELATIVE, "waiting", None, 3, AT)
OFFICER_REF = UserRef(OFFICER, "officer", "Officer Wang")


@dataclass
class Recorder:
    """Stands in for the hub: what was published, decoded back into frames."""

    sent: list[tuple[str, str, int, ServerFrame]] = field(default_factory=list)

    def publish(self, topic: str, frame: bytes, *, seq: int = 0, audience_: str = "a") -> None:
        decoded = decode_server(frame)
        assert not isinstance(decoded, ProtocolError), decoded
        self.sent.append((topic, audience_, seq, decoded))


def message(kind: MessageKind, seq: int = 4) -> Message:
    role: Role = "relative" if kind == "text" else "officer"
    sender = RELATIVE if kind == "text" else OFFICER
    return Message(41, CONV.id, seq, sender, role, "X", "c-1", kind, "hello", AT)


def thread_frame(event: Any, note: str | None = None) -> ConversationEvent:
    return ConversationEvent(
        event=event, conv=CONV.id, state="active", officer=OFFICER, by=OFFICER, note=note,
        inmate=CONV.inmate_id, relative=RELATIVE, cycle=2,
    )  # fmt: skip


VISIT = Visit(5, 70, GM, RELATIVE, "R", AT, 2, [], "pending", None, None, None, AT)
DECIDED = Visit(5, 70, GM, RELATIVE, "R", AT, 2, [], "approved", None, OFFICER, AT, AT)
LINK = FamilyLink(
    3, RELATIVE, GM, "GM", "0001", 70, "son", "", "verified", None, OFFICER, AT, AT
)  # fmt: skip
COMPLAINT = ComplaintFacts(prison_id=GM, complainant_id=RELATIVE, escalated=False)
COMPLAINT_FRAME = ComplaintEvent(id=9, reference="GM-2026-000009", state="answered", message="m")
CANDIDATES = [
    User(RELATIVE, "relative", "r", "R"),
    User(OFFICER, "officer", "o", "O", (GM,)),  # filed on the inmate's behalf: never told
    User(20, "supervisor", "s", "S", (GM,)),
    User(21, "supervisor", "so", "SO", (SS,)),
    User(30, "admin", "a", "A"),
]
ANNOUNCED = AnnouncementEvent(id=1, title="t", body="b", at=AT, prison=GM)
BUREAU_WIDE = AnnouncementEvent(id=2, title="t", body="b", at=AT)
ALL, STAFF = envelope.ALL, envelope.STAFF
C, U, PS, PR = "c:7", f"u:{RELATIVE}", f"p:{GM}:staff", f"p:{GM}:relatives"


def no_note(frame: ConversationEvent) -> ConversationEvent:
    return msgspec.structs.replace(frame, note=None)


CASES: dict[str, tuple[Event, list[tuple[str, str, int, Any]]]] = {
    "a message: its watchers, in seq order": (
        MessageStored(message("text")),
        [(C, ALL, 4, message_event(message("text")))],
    ),
    "a fact card: its watchers": (
        MessageStored(message("system")),
        [(C, ALL, 4, message_event(message("system")))],
    ),
    "a note: its staff watchers only": (
        MessageStored(message("note")),
        [(C, STAFF, 4, message_event(message("note")))],
    ),
    "a question opening a cycle: staff and the relative": (
        ThreadChanged(ThreadChange(CONV, "created", by_message=True), thread_frame("created")),
        [(PS, ALL, 0, thread_frame("created")), (U, ALL, 0, thread_frame("created"))],
    ),
    "a question reopening a thread: staff and the relative": (
        ThreadChanged(ThreadChange(CONV, "reopened", by_message=True), thread_frame("reopened")),
        [(PS, ALL, 0, thread_frame("reopened")), (U, ALL, 0, thread_frame("reopened"))],
    ),
    "a claim by an answer: staff only (the relative gets the answer)": (
        ThreadChanged(ThreadChange(CONV, "claimed", by_message=True), thread_frame("claimed")),
        [(PS, ALL, 0, thread_frame("claimed"))],
    ),
    "a claim over REST, relative still verified: both": (
        ThreadChanged(
            ThreadChange(CONV, "claimed", relative_verified=frozenset({70})),
            thread_frame("claimed"),
        ),
        [(PS, ALL, 0, thread_frame("claimed")), (U, ALL, 0, thread_frame("claimed"))],
    ),
    "a hand-over: the note to staff, the relative without it": (
        ThreadChanged(
            ThreadChange(CONV, "transferred", relative_verified=frozenset({70, 71})),
            thread_frame("transferred", "call the family"),
        ),
        [
            (PS, ALL, 0, thread_frame("transferred", "call the family")),
            (U, ALL, 0, no_note(thread_frame("transferred", "call the family"))),
        ],
    ),
    "a change after the relative's link was revoked: staff only": (
        ThreadChanged(
            ThreadChange(CONV, "resolved", relative_verified=frozenset({71})),
            thread_frame("resolved"),
        ),
        [(PS, ALL, 0, thread_frame("resolved"))],
    ),
    "a family case's thread resolved: staff, its relative and the other readers": (
        ThreadChanged(
            ThreadChange(
                CONV,
                "resolved",
                relative_verified=frozenset({70}),
                readers=frozenset({RELATIVE, 102}),
            ),
            thread_frame("resolved"),
        ),
        [
            (PS, ALL, 0, thread_frame("resolved")),
            (U, ALL, 0, thread_frame("resolved")),
            ("u:102", ALL, 0, thread_frame("resolved")),
        ],
    ),
    "a family case's hand-over: the other readers without the note": (
        ThreadChanged(
            ThreadChange(CONV, "transferred", readers=frozenset({102})),
            thread_frame("transferred", "call the family"),
        ),
        [
            (PS, ALL, 0, thread_frame("transferred", "call the family")),
            ("u:102", ALL, 0, no_note(thread_frame("transferred", "call the family"))),
        ],
    ),
    "a visit request: the prison's staff": (
        VisitRequested(VISIT),
        [(PS, ALL, 0, VisitEvent(id=5, inmate=70, state="pending", slot_start=AT))],
    ),
    "a visit decision: the relative and the prison's staff": (
        VisitDecided(DECIDED),
        [
            (U, ALL, 0, VisitEvent(id=5, inmate=70, state="approved", slot_start=AT)),
            (PS, ALL, 0, VisitEvent(id=5, inmate=70, state="approved", slot_start=AT)),
        ],
    ),
    "a link decision: the relative": (
        LinkDecided(LINK),
        [(U, ALL, 0, LinkEvent(id=3, state="verified"))],
    ),
    "a card update: each verified relative, one frame per part": (
        CardUpdated(70, ("health", "money"), (RELATIVE, 101)),
        [
            (U, ALL, 0, InfoEvent(inmate=70, field="health")),
            ("u:101", ALL, 0, InfoEvent(inmate=70, field="health")),
            (U, ALL, 0, InfoEvent(inmate=70, field="money")),
            ("u:101", ALL, 0, InfoEvent(inmate=70, field="money")),
        ],
    ),
    "a consent recorded: that relative only": (
        ConsentRecorded(70, 101),
        [("u:101", ALL, 0, InfoEvent(inmate=70, field="consent"))],
    ),
    "a card update with no verified relative: nobody": (CardUpdated(70, ("health",), ()), []),
    "a complaint: complainant, its prison's supervisors, admins; never an officer": (
        ComplaintChanged(COMPLAINT_FRAME, COMPLAINT, CANDIDATES),
        [(f"u:{user}", ALL, 0, COMPLAINT_FRAME) for user in (RELATIVE, 20, 30)],
    ),
    "an escalated complaint: the same readers": (
        ComplaintChanged(COMPLAINT_FRAME, ComplaintFacts(GM, RELATIVE, True), CANDIDATES),
        [(f"u:{user}", ALL, 0, COMPLAINT_FRAME) for user in (RELATIVE, 20, 30)],
    ),
    "presence: names to staff, the count to relatives": (
        PresenceChanged(GM, 3, [OFFICER_REF]),
        [(PS, ALL, 0, PresenceEvent(GM, 3, [OFFICER_REF])), (PR, ALL, 0, PresenceEvent(GM, 3))],
    ),
    "a prison's announcement: its relatives": (
        AnnouncementPosted(ANNOUNCED),
        [(PR, ALL, 0, ANNOUNCED)],
    ),
    "a bureau-wide announcement: every relative": (
        AnnouncementPosted(BUREAU_WIDE),
        [("bureau", ALL, 0, BUREAU_WIDE)],
    ),
    "typing: everyone watching, unordered": (
        Typed(CONV.id, OFFICER_REF),
        [(C, ALL, 0, TypingEvent(conv=CONV.id, user=OFFICER_REF))],
    ),
    "a read mark: everyone watching, unordered": (
        ReadMarked(CONV.id, RELATIVE, 3),
        [(C, ALL, 0, ReadEvent(conv=CONV.id, user=RELATIVE, seq=3))],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_who_is_told(name: str) -> None:
    event, expected = CASES[name]
    hub = Recorder()
    tell(hub, event)
    assert hub.sent == expected


def test_a_message_is_published_as_the_replay_would_write_it() -> None:
    """The hub repairs a conversation topic from storage with ``channels.events.audience``;
    it must pick the envelope audience the policy picks live, or a repaired note would reach
    a relative (or a repaired message miss one)."""
    kinds: tuple[MessageKind, ...] = ("text", "note", "system")
    for kind in kinds:
        live = message_audience(CONV.id, kind)
        assert envelope_audience(message(kind)) == (STAFF if live.staff_only else ALL), kind


def test_each_recipient_group_has_its_topic() -> None:
    assert topic_of(Watchers(7)) == topic_of(Watchers(7, staff_only=True)) == "c:7"
    assert topic_of(PrisonStaff(GM)) == PS
    assert topic_of(PrisonRelatives(GM)) == PR
    assert topic_of(BureauRelatives()) == "bureau"
    assert topic_of(Person(RELATIVE)) == U


def change(event: Any, *, by_message: bool = False, verified: set[int] = set()) -> ThreadChange:  # noqa: B006
    return ThreadChange(CONV, event, by_message, frozenset(verified))


STAFF_GM, THE_RELATIVE = PrisonStaff(GM), Person(RELATIVE)
RULES: list[tuple[ThreadChange, ThreadAudience]] = [
    (change("created", by_message=True), ThreadAudience(STAFF_GM, THE_RELATIVE)),
    (change("reopened", by_message=True), ThreadAudience(STAFF_GM, THE_RELATIVE)),
    (change("claimed", by_message=True), ThreadAudience(STAFF_GM, None)),
    (change("claimed", verified={70}), ThreadAudience(STAFF_GM, THE_RELATIVE)),
    (change("resolved"), ThreadAudience(STAFF_GM, None)),  # no longer verified for any
    (change("transferred", verified={71}), ThreadAudience(STAFF_GM, None)),  # another inmate
]


@pytest.mark.parametrize(("change", "expected"), RULES)
def test_the_relative_is_told_of_a_thread_only_while_it_may_see_it(
    change: ThreadChange, expected: ThreadAudience
) -> None:
    assert thread_change_audience(change) == expected


RECIPIENTS: dict[str, tuple[object, object]] = {
    "a text": (message_audience(7, "text"), Watchers(7)),
    "a fact card": (message_audience(7, "system"), Watchers(7)),
    "a note": (message_audience(7, "note"), Watchers(7, staff_only=True)),
    "typing, a read mark": (activity_audience(7), Watchers(7)),
    "a visit request": (visit_audience(VISIT, decided=False), (PrisonStaff(GM),)),
    "a visit decision": (
        visit_audience(DECIDED, decided=True),
        (Person(RELATIVE), PrisonStaff(GM)),
    ),
    "a link decision": (link_audience(LINK), (Person(RELATIVE),)),
    "a card update": (card_audience([RELATIVE, 101]), (Person(RELATIVE), Person(101))),
    "a complaint": (
        complaint_recipients(COMPLAINT, CANDIDATES),
        (Person(RELATIVE), Person(20), Person(30)),
    ),
    "presence": (presence_audience(GM), PresenceAudience(PrisonStaff(GM), PrisonRelatives(GM))),
    "a prison's announcement": (announcement_audience(GM), PrisonRelatives(GM)),
    "a bureau-wide announcement": (announcement_audience(None), BureauRelatives()),
}


@pytest.mark.parametrize("name", list(RECIPIENTS))
def test_the_policy_names_the_recipients(name: str) -> None:
    got, expected = RECIPIENTS[name]
    assert got == expected


def test_no_event_reaches_an_officer_through_a_complaint() -> None:
    """Officers listen on their prison's staff topic: a complaint must go to user topics only."""
    told: tuple[Recipient, ...] = complaint_recipients(COMPLAINT, CANDIDATES)
    assert all(isinstance(r, Person) for r in told) and Person(OFFICER) not in told
