"""The per-socket rules of ``kinline.v1``, sans I/O: client frames in, frames and actions out.

In the manner of h11 and wsproto, a :class:`Session` holds one socket's state and does no
I/O: the driver (``server/gateway.py``) feeds it each decoded frame (or the decoder's
:class:`~channels.protocol.ProtocolError`) with the time, and carries out what comes back, in
order: a :data:`ServerFrame` to write, a :class:`Close`, or an action that needs storage,
the policy, the hub or the send path (:class:`Subscribe`, :class:`Unsubscribe`,
:class:`RelayTyping`, :class:`MarkRead`, :class:`Submit`). The outcome of a subscription is
fed back (:meth:`Session.subscribed` or :meth:`Session.unavailable`), and the session answers.
Authorization is not decided here: the driver asks ``server/policy.py`` for every action.

Rules (each tested without a socket in ``tests/test_session.py``):

- ``hello {resume}``: at most ``max_hello_cursors`` cursors are taken, the last ones named
  (clients list their cursors oldest first, so these are the most recently advanced); past
  that, **one** ``error {code: too_many_cursors}`` and the rest are not followed (absent from
  ``subscribed``). A relative also follows its own conversations (from the start when it
  names no cursor: it has seen nothing of them).
- ``hello`` and ``watch`` are answered ``subscribed {convs: {conv: last_seq}}`` once the hub
  subscription is live and its replay written, or, when it could not be made (storage or
  broker unavailable, no connection slot), ``error {code: unavailable, retry_after}`` and a
  close with 1013 (any other failure: ``internal`` and 1011): never an open socket that
  silently follows nothing. Refusals of single
  conversations of a ``hello`` are one ``error`` per code, naming them all.
- **The position is gone: not recovered.** A cursor beyond the conversation's last stored seq
  cannot be resumed from (the client's history is not this server's). It is followed from the
  last seq instead, and one ``error {code: not_recovered}`` naming every such conversation
  comes before ``subscribed`` (whose seq for it is then below the client's cursor): the
  client is told, never left waiting for seqs it already claims to have.
- ``hello``, ``watch`` and ``unwatch`` share one token bucket per socket
  (``subscribe_burst`` at once, ``subscribe_rate`` per second); past it, ``error {code:
  rate_limited, retry_after}`` and nothing is done.
- **One audit entry per look.** Where opening a conversation is audited (a supervisor's look,
  ``server/policy.audits_opening``), the driver writes the entry *before* the subscription
  shows anything; a conversation audited on this socket within the last ``look_window``
  seconds is still the same look and is not audited again, so a watch/unwatch loop writes one
  row per window, not one per frame.
- ``typing``: at most one relayed per conversation every ``typing_every`` seconds; the rest
  are only authorized (answered if refused; the conversation's facts are cached per socket).
- ``read {conv, seq}``: a seq at or below one this socket already marked is dropped without
  I/O (the stored cursor never moves back anyway).
- ``send``: handed to the send path (:class:`Submit`), which admits, commits and acks it.
- Bad frames: the decoder's error, as an ``error`` frame; the socket stays open.
- After a :class:`Close`, every further frame is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from channels.protocol import (
    CloseCode,
    ErrorCode,
    ErrorFrame,
    Hello,
    ProtocolError,
    Read,
    Send,
    ServerFrame,
    Subscribed,
    Typing,
    Unwatch,
    Watch,
)

__all__ = [
    "Close",
    "MarkRead",
    "Output",
    "RelayTyping",
    "Session",
    "SessionLimits",
    "Submit",
    "Subscribe",
    "Unsubscribe",
]


@dataclass(frozen=True, slots=True)
class SessionLimits:
    max_hello_cursors: int = 200
    subscribe_rate: float = 20.0  # hello/watch/unwatch frames per second, sustained
    subscribe_burst: int = 1000
    typing_every: float = 2.0  # seconds between two relayed typing events per conversation
    look_window: float = 300.0  # seconds one audited look covers (see the module docstring)
    unavailable_retry: float = 1.0  # retry_after told when a subscription cannot be made


# -- outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Close:
    """Close the socket with ``code`` (after writing what came before)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Follow these conversations: authorize each (``read`` for a hello, ``watch`` for a
    watch), add the relative's own ones when ``own``, read their last seqs, audit the look
    where due, join the hub from :meth:`Session.starts`, then report :meth:`Session.subscribed`
    (or :meth:`Session.unavailable`). A cursor ``None`` means live from now."""

    via: Literal["hello", "watch"]
    cursors: dict[int, int | None]
    own: bool = False


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    conv: int


@dataclass(frozen=True, slots=True)
class RelayTyping:
    """Authorize ``typing`` on ``conv`` (every frame: a refusal is always answered) and, if
    ``tell``, tell its readers."""

    conv: int
    tell: bool = True


@dataclass(frozen=True, slots=True)
class MarkRead:
    """Authorize, clamp to the last seq, store and tell the read cursor."""

    conv: int
    seq: int


@dataclass(frozen=True, slots=True)
class Submit:
    """Hand the send to the send path (it admits, commits and acks or refuses it)."""

    frame: Send
    received: float


Output: TypeAlias = ServerFrame | Close | Subscribe | Unsubscribe | RelayTyping | MarkRead | Submit


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: int
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> float | None:
        """``None`` if a token was taken, else the seconds until one is there."""
        if self.tokens < 0:
            self.tokens, self.at = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


def _named(convs: Iterable[int]) -> str:
    """``conversation 4`` / ``conversations 2, 3 and 18 more`` (at most 20 ids in a message)."""
    ids = sorted(convs)
    named = ", ".join(str(c) for c in ids[:20])
    more = f" and {len(ids) - 20} more" if len(ids) > 20 else ""
    return f"{'conversation' if len(ids) == 1 else 'conversations'} {named}{more}"


@dataclass(slots=True)
class Session:
    """One socket's session state (see the module docstring for its rules)."""

    limits: SessionLimits = field(default_factory=SessionLimits)
    is_relative: bool = False
    closed: bool = False
    _bucket: _Bucket = field(init=False)
    # Each made at its first entry: most sockets never need one, and an empty dict is 64
    # bytes for every socket held.
    _typed: dict[int, float] | None = None  # conv -> last relayed
    _looked: dict[int, float] | None = None  # conv -> last audited look
    _read: dict[int, int] | None = None  # conv -> highest seq marked

    def __post_init__(self) -> None:
        self._bucket = _Bucket(self.limits.subscribe_rate, self.limits.subscribe_burst)

    # frames in

    def receive(
        self, frame: Hello | Send | Typing | Read | Watch | Unwatch | ProtocolError, now: float
    ) -> list[Output]:
        """What to do about one frame from the client, received at ``now`` (monotonic s)."""
        if self.closed:
            return []
        match frame:
            case ProtocolError():
                return [frame.frame()]
            case Send():
                return [Submit(frame, now)]
            case Typing():
                typed = self._typed
                last = typed.get(frame.conv) if typed else None
                if last is not None and now - last < self.limits.typing_every:
                    return [RelayTyping(frame.conv, tell=False)]
                if typed is None or len(typed) >= 1000:
                    typed = self._typed = {}
                typed[frame.conv] = now
                return [RelayTyping(frame.conv)]
            case Read():
                if frame.seq <= (self._read.get(frame.conv, 0) if self._read else 0):
                    return []
                return [MarkRead(frame.conv, frame.seq)]
            case Hello() | Watch() | Unwatch():
                wait = self._bucket.take(now)
                if wait is not None:
                    return [
                        ErrorFrame(
                            code=ErrorCode.RATE_LIMITED,
                            message=f"subscribing too fast; retry in {wait:.1f} s",
                            retry_after=round(wait, 3),
                        )
                    ]
                return self._subscription(frame)

    def _subscription(self, frame: Hello | Watch | Unwatch) -> list[Output]:
        if isinstance(frame, Unwatch):
            return [Unsubscribe(frame.conv)]
        if isinstance(frame, Watch):
            return [Subscribe("watch", {frame.conv: frame.after})]
        out: list[Output] = []
        items = list(frame.resume.items())
        cap = self.limits.max_hello_cursors
        if len(items) > cap:
            out.append(
                ErrorFrame(
                    code=ErrorCode.TOO_MANY_CURSORS,
                    message=f"a hello takes at most {cap} cursors; the {cap} last named are"
                    " resumed",
                )
            )
            items = items[-cap:]
        out.append(Subscribe("hello", dict(items), own=self.is_relative))
        return out

    # outcomes fed back

    def marked(self, conv: int, seq: int) -> None:
        """The read cursor ``seq`` of ``conv`` was stored (or is already at least that)."""
        read = self._read
        if read is None or len(read) >= 1000:
            read = self._read = {}
        read[conv] = max(seq, read.get(conv, 0))

    def audit_due(self, conv: int, now: float) -> bool:
        """Whether a look at ``conv`` now needs its own audit entry (where looks are audited)."""
        last = self._looked.get(conv) if self._looked else None
        return last is None or now - last >= self.limits.look_window

    def audited(self, conv: int, now: float) -> None:
        """The entry for a look at ``conv`` was committed at ``now``."""
        if self._looked is None:
            self._looked = {}
        self._looked[conv] = now

    @staticmethod
    def starts(
        cursors: Mapping[int, int | None], last: Mapping[int, int]
    ) -> tuple[dict[int, int | None], set[int]]:
        """The cursor to join each conversation from, and those not recovered: a cursor
        beyond the conversation's last stored seq is gone, so it is followed from that last
        seq instead (and the client is told). ``None`` stays live-from-now."""
        starts: dict[int, int | None] = {}
        lost: set[int] = set()
        for conv, cursor in cursors.items():
            top = last.get(conv, 0)
            if cursor is not None and cursor > top:
                starts[conv] = top
                lost.add(conv)
            else:
                starts[conv] = cursor
        return starts, lost

    def subscribed(
        self,
        request: Subscribe,
        reached: Mapping[int, int],
        lost: set[int],
        refused: Mapping[int, tuple[str, str]],
    ) -> list[Output]:
        """The answer once the subscription is live: ``reached`` is, per conversation
        followed, the seq up to which its replay has been written; ``refused`` the
        conversations the policy refused, with ``(code, message)``."""
        out: list[Output] = []
        if request.via == "watch":
            out.extend(ErrorFrame(code=code, message=message) for code, message in refused.values())
        else:
            by_code: dict[tuple[str, str], list[int]] = {}
            for conv, reason in refused.items():
                by_code.setdefault(reason, []).append(conv)
            for (code, message), convs in by_code.items():
                out.append(ErrorFrame(code=code, message=f"{_named(convs)}: {message}"))
        gone = lost & set(reached)
        if gone:
            out.append(
                ErrorFrame(
                    code=ErrorCode.NOT_RECOVERED,
                    message=f"{_named(gone)}: the position is gone (cursor beyond the last"
                    " seq); followed from the seq in subscribed, reload the history",
                )
            )
        if reached or request.via == "hello":  # a hello is always answered; a refused watch not
            out.append(Subscribed(convs=dict(reached)))
        return out

    def unavailable(self, what: str = "storage") -> list[Output]:
        """The subscription could not be made: say so, then close with 1013 (the client
        reconnects and resumes from its cursors)."""
        self.closed = True
        retry = self.limits.unavailable_retry
        return [
            ErrorFrame(
                code=ErrorCode.UNAVAILABLE,
                message=f"{what} is unavailable; reconnect and resume",
                retry_after=retry,
            ),
            Close(CloseCode.TRY_AGAIN_LATER, f"{what} unavailable"),
        ]

    def failed(self) -> list[Output]:
        """The subscription failed for another reason (a bug, logged by the driver): say
        ``internal`` and close with 1011, as :meth:`unavailable` does with 1013; the client
        reconnects with back-off and resumes."""
        self.closed = True
        return [
            ErrorFrame(code=ErrorCode.INTERNAL, message="internal error; reconnect and resume"),
            Close(CloseCode.INTERNAL, "internal error"),
        ]
