"""The per-socket session rules, sans I/O (``channels/session.py``): frames in, frames and
actions out, no socket, no storage, time as an input. Table-driven, in the manner of
centrifuge's recovery tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from channels.protocol import (
    CloseCode,
    ErrorCode,
    ErrorFrame,
    Hello,
    ProtocolError,
    Read,
    Send,
    Subscribed,
    Typing,
    Unwatch,
    Watch,
)
from channels.session import (
    Close,
    MarkRead,
    RelayTyping,
    Session,
    SessionLimits,
    Submit,
    Subscribe,
    Unsubscribe,
)

# -- resuming: where each conversation is joined from, and what is not recovered -------------


@dataclass(frozen=True)
class Recovery:
    name: str
    cursor: int | None  # what the client asked to resume after (None: live from now)
    last: int  # the conversation's last stored seq
    start: int | None  # where the hub joins it from
    recovered: bool


RECOVERY = [
    Recovery("from the start", 0, 5, 0, True),
    Recovery("in the middle", 2, 5, 2, True),
    Recovery("at the top: nothing to replay", 5, 5, 5, True),
    Recovery("empty conversation, from the start", 0, 0, 0, True),
    Recovery("live from now", None, 5, None, True),
    Recovery("the position is gone: beyond the last seq", 9, 5, 5, False),
    Recovery("the position is gone: the conversation is empty", 3, 0, 0, False),
]


@pytest.mark.parametrize("case", RECOVERY, ids=lambda c: c.name)
def test_where_a_cursor_is_resumed_from(case: Recovery) -> None:
    starts, lost = Session.starts({7: case.cursor}, {7: case.last})
    assert starts == {7: case.start}
    assert (7 not in lost) is case.recovered


def test_the_position_is_gone_is_said_in_subscribed_not_left_silent() -> None:
    """A cursor beyond the conversation's last seq used to be joined as is: every message up
    to it was dropped as a duplicate, silently. Now the client is told."""
    session = Session()
    [request] = session.receive(Watch(conv=7, after=9), 0.0)
    assert isinstance(request, Subscribe)
    starts, lost = Session.starts(request.cursors, {7: 5})
    answer = session.subscribed(request, {7: starts[7] or 0}, lost, {})
    assert answer == [Subscribed(convs={7: 5}, not_recovered=[7])]


# -- hello -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HelloCase:
    name: str
    resume: dict[int, int]
    relative: bool
    cap: int
    taken: dict[int, int]
    too_many: bool


HELLOS = [
    HelloCase("staff, two cursors", {1: 0, 2: 4}, False, 200, {1: 0, 2: 4}, False),
    HelloCase("relative, none: its own are added by the driver", {}, True, 200, {}, False),
    HelloCase("at the cap", {1: 1, 2: 2, 3: 3}, False, 3, {1: 1, 2: 2, 3: 3}, False),
    HelloCase(
        "past the cap: the last named kept", {1: 1, 2: 2, 3: 3, 4: 4}, False, 2, {3: 3, 4: 4}, True
    ),
]


@pytest.mark.parametrize("case", HELLOS, ids=lambda c: c.name)
def test_hello(case: HelloCase) -> None:
    session = Session(SessionLimits(max_hello_cursors=case.cap), is_relative=case.relative)
    out = session.receive(Hello(resume=case.resume), 0.0)
    errors = [o for o in out if isinstance(o, ErrorFrame)]
    [request] = [o for o in out if isinstance(o, Subscribe)]
    assert request == Subscribe("hello", dict(case.taken), own=case.relative)
    assert [e.code for e in errors] == (["too_many_cursors"] if case.too_many else [])


def test_a_thousand_cursors_past_the_cap_are_one_error_frame() -> None:
    """Regression: one hello with 1,000 cursors cost 1,000 lookups and 1,000 error frames."""
    session = Session(SessionLimits(max_hello_cursors=50))
    out = session.receive(Hello(resume={n: 0 for n in range(1, 1001)}), 0.0)
    assert [type(o) for o in out] == [ErrorFrame, Subscribe]
    request = out[1]
    assert isinstance(request, Subscribe)
    assert list(request.cursors) == list(range(951, 1001))


def test_hello_refusals_are_one_error_per_code_then_subscribed() -> None:
    session = Session()
    [request] = session.receive(Hello(resume={1: 0, 2: 0, 3: 0, 4: 0}), 0.0)
    assert isinstance(request, Subscribe)
    refused = {n: ("not_found", "no such conversation") for n in (2, 3, 4)}
    out = session.subscribed(request, {1: 6}, set(), refused)
    assert out == [
        ErrorFrame(code="not_found", message="conversations 2, 3, 4: no such conversation"),
        Subscribed(convs={1: 6}),
    ]


@dataclass(frozen=True)
class WatchAnswer:
    name: str
    reached: dict[int, int]
    refused: dict[int, tuple[str, str]]
    frames: list[object]


WATCH_ANSWERS = [
    WatchAnswer("live", {5: 3}, {}, [Subscribed(convs={5: 3})]),
    WatchAnswer(
        "refused: the error alone, no subscribed",
        {},
        {5: ("not_found", "no such conversation")},
        [ErrorFrame(code="not_found", message="no such conversation")],
    ),
]


@pytest.mark.parametrize("case", WATCH_ANSWERS, ids=lambda c: c.name)
def test_watch_is_answered(case: WatchAnswer) -> None:
    session = Session()
    [request] = session.receive(Watch(conv=5), 0.0)
    assert request == Subscribe("watch", {5: None})
    assert session.subscribed(request, case.reached, set(), case.refused) == case.frames


def test_a_subscription_that_cannot_be_made_closes_1013_and_ignores_the_rest() -> None:
    """Regression: a hello that failed (no connection slot, storage down) was answered
    ``internal`` and the socket stayed open, following nothing."""
    session = Session(SessionLimits(unavailable_retry=2.0))
    out = session.unavailable()
    assert out[0] == ErrorFrame(
        code="unavailable", message="storage is unavailable; reconnect and resume", retry_after=2.0
    )
    assert out[1] == Close(CloseCode.TRY_AGAIN_LATER, "storage unavailable")
    assert session.receive(Watch(conv=1), 1.0) == []
    assert session.receive(Send(conv=1, cid="c", body="b"), 1.0) == []


# -- rates -----------------------------------------------------------------------------------


def test_watch_and_unwatch_past_their_rate_are_refused_with_retry_after() -> None:
    session = Session(SessionLimits(subscribe_rate=2.0, subscribe_burst=3))
    frames: list[Watch | Unwatch] = [Watch(conv=1), Unwatch(conv=1), Watch(conv=1), Unwatch(conv=1)]
    outs = [session.receive(frame, 10.0) for frame in frames]
    assert outs[:3] == [
        [Subscribe("watch", {1: None})],
        [Unsubscribe(1)],
        [Subscribe("watch", {1: None})],
    ]
    [refused] = outs[3]
    assert isinstance(refused, ErrorFrame)
    assert refused.code == ErrorCode.RATE_LIMITED
    assert refused.retry_after == pytest.approx(0.5)
    assert session.receive(Unwatch(conv=1), 10.5) == [Unsubscribe(1)]  # refilled by then


@dataclass(frozen=True)
class TypingCase:
    name: str
    frames: list[tuple[int, float]]  # (conv, at)
    relayed: list[int]


TYPINGS = [
    TypingCase("five at once: one", [(1, 0.0)] * 5, [1]),
    TypingCase("two conversations", [(1, 0.0), (2, 0.1), (1, 0.2)], [1, 2]),
    TypingCase("after the window again", [(1, 0.0), (1, 1.9), (1, 2.0)], [1, 1]),
]


@pytest.mark.parametrize("case", TYPINGS, ids=lambda c: c.name)
def test_typing_is_rate_limited_per_conversation(case: TypingCase) -> None:
    session = Session(SessionLimits(typing_every=2.0))
    out = [o for conv, at in case.frames for o in session.receive(Typing(conv=conv), at)]
    assert len(out) == len(case.frames)  # each is authorized: a refusal is always answered
    assert [o.conv for o in out if isinstance(o, RelayTyping) and o.tell] == case.relayed


def test_a_read_at_or_below_the_marked_one_needs_no_io() -> None:
    session = Session()
    assert session.receive(Read(conv=1, seq=3), 0.0) == [MarkRead(1, 3)]
    session.marked(1, 3)
    assert session.receive(Read(conv=1, seq=2), 0.0) == []
    assert session.receive(Read(conv=1, seq=3), 0.0) == []
    assert session.receive(Read(conv=1, seq=4), 0.0) == [MarkRead(1, 4)]
    assert session.receive(Read(conv=1, seq=0), 0.0) == []


# -- audit: one entry per look ---------------------------------------------------------------


def test_one_audit_entry_per_look_window() -> None:
    """Regression: a supervisor's watch/unwatch loop wrote 306 audit rows in 2 s."""
    session = Session(SessionLimits(look_window=300.0))
    assert session.audit_due(1, 0.0)
    session.audited(1, 0.0)
    assert not session.audit_due(1, 1.0)
    assert not session.audit_due(1, 299.9)
    assert session.audit_due(2, 1.0)  # another conversation is another look
    assert session.audit_due(1, 300.0)


# -- the rest --------------------------------------------------------------------------------


def test_send_is_handed_to_the_send_path_and_bad_frames_answered() -> None:
    session = Session()
    send = Send(conv=1, cid="c", body="b")
    assert session.receive(send, 4.0) == [Submit(send, 4.0)]
    error = ProtocolError(ErrorCode.INVALID_JSON, "invalid JSON", None)
    assert session.receive(error, 4.0) == [error.frame()]
