"""The ``kinline.v1`` wire protocol, sans I/O: frames, error codes, close codes.

This module knows JSON text frames and nothing about sockets or asyncio. The server feeds it
the text of every frame it receives and writes the bytes it returns; the Python client
(:mod:`channels.client`) does the same in the other direction.

Guarantees
----------
* :func:`decode_client` and :func:`decode_server` **never raise**, whatever the input
  (arbitrary bytes, invalid UTF-8, lone surrogates, deep nesting, huge numbers, ``NaN``, ...).
  They return either a frame or a :class:`ProtocolError` whose ``code`` is one of the stable
  :class:`ErrorCode` values. An exception that should not happen is logged and answered with
  ``internal``; internals (tracebacks, class names) never reach the wire.
* The frame size is checked *before* parsing, in bytes of UTF-8 text (``frame_too_large``).
* The happy path parses the JSON once, straight into a typed frame, with one cached
  ``msgspec.json.Decoder`` per direction. Only on an error path is the text parsed again
  (leniently) to tell ``invalid_json`` / ``unknown_type`` / ``invalid_frame`` apart and to
  recover the ``cid`` of a bad ``send``, which is echoed in the error so the client can match
  it to its pending send.
* :func:`encode` uses one module-level ``msgspec.json.Encoder``; a frame is encoded once and
  the same bytes can be written to every socket. Datetimes are RFC 3339 strings.
* Client frames are strict (``forbid_unknown_fields``): a typo is an ``invalid_frame``, not a
  silently ignored field. Server frames tolerate unknown fields so an older client keeps working
  when the server adds one.
* Fields equal to their default are omitted on the wire (``omit_defaults``): a missing optional
  field means its default (``null``, ``"text"``, ``{}``, ``""``). Decoders accept both forms.
* Conversation ids are positive, sequence numbers non-negative, both at most ``2**63 - 1``
  (a SQL ``bigint``). ``max_body_chars`` counts Unicode code points of the body as sent;
  a body that is empty once whitespace is stripped is ``body_empty``. Text no database can
  store (NUL, lone surrogates: :mod:`channels.text`) in a ``send``'s body or cid is
  ``invalid_text``, refused here so it never joins a batch of other users' messages.

Close codes (:class:`CloseCode`)
--------------------------------
=====  ======================  ==============================================================
1000   NORMAL                  deliberate end (client closing, session ended); final
1001   GOING_AWAY              server process leaving; reconnect (possibly elsewhere)
1011   INTERNAL                unexpected server error; reconnect with back-off
1012   RESTARTING              server restarting; reconnect and resume from the cursors
1013   TRY_AGAIN_LATER         a subscription could not be made (storage, broker); reconnect
                               with back-off and resume from the cursors
4401   NOT_AUTHENTICATED       no valid session/token at the handshake; final
4403   FORBIDDEN_ORIGIN        browser Origin not allowed; final
4008   TOO_SLOW                the outbound queue overflowed; reconnect and resume
4429   RATE_LIMITED            too many violations or frames; reconnect with back-off
4409   TOO_MANY_CONNECTIONS    per-user connection cap reached; reconnect with back-off
=====  ======================  ==============================================================

:func:`is_final_close` says which codes a client must not reconnect after.
"""

import logging
from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Final, Literal, TypeAlias

import msgspec
from msgspec import Meta, Struct

from channels.text import storable

__all__ = [
    "BINARY_NOT_SUPPORTED",
    "BODY_EMPTY",
    "BODY_TOO_LONG",
    "CLIENT_FRAME_TYPES",
    "DEFAULT_MAX_BODY_CHARS",
    "DEFAULT_MAX_FRAME_BYTES",
    "FORBIDDEN",
    "FRAME_TOO_LARGE",
    "INTERNAL",
    "INVALID_FRAME",
    "INVALID_JSON",
    "INVALID_TEXT",
    "MAX_RESUME_ENTRIES",
    "NOT_FOUND",
    "NOT_RECOVERED",
    "RATE_LIMITED",
    "SERVER_FRAME_TYPES",
    "SUBPROTOCOL",
    "TOO_MANY_CONNECTIONS",
    "TOO_MANY_CURSORS",
    "UNAVAILABLE",
    "UNKNOWN_TYPE",
    "Ack",
    "AnnouncementEvent",
    "AttachmentInfo",
    "ClientFrame",
    "CloseCode",
    "ComplaintEvent",
    "ConversationEvent",
    "ErrorCode",
    "ErrorFrame",
    "Hello",
    "InfoEvent",
    "Limits",
    "LinkEvent",
    "MessageEvent",
    "OpenerRef",
    "OpeningEvent",
    "PresenceEvent",
    "ProtocolError",
    "Read",
    "ReadEvent",
    "Send",
    "ServerFrame",
    "Subscribed",
    "Typing",
    "TypingEvent",
    "Unwatch",
    "UserRef",
    "VisitEvent",
    "Watch",
    "Welcome",
    "decode_client",
    "decode_server",
    "encode",
    "is_final_close",
]

_log = logging.getLogger(__name__)

SUBPROTOCOL: Final = "kinline.v1"
DEFAULT_MAX_FRAME_BYTES: Final = 16384
DEFAULT_MAX_BODY_CHARS: Final = 2000
MAX_RESUME_ENTRIES: Final = 1000
MAX_CID_CHARS: Final = 64
_MAX_MESSAGE_CHARS: Final = 200
_BIGINT_MAX: Final = 2**63 - 1


class ErrorCode(StrEnum):
    """Stable ``error.code`` values. Clients may switch on them; never rename one."""

    FRAME_TOO_LARGE = "frame_too_large"
    INVALID_JSON = "invalid_json"  # not JSON, not UTF-8, or not a JSON object
    UNKNOWN_TYPE = "unknown_type"  # an object whose "type" is missing or unknown
    INVALID_FRAME = "invalid_frame"  # missing/extra/mistyped field, constraint violated
    BODY_EMPTY = "body_empty"
    BODY_TOO_LONG = "body_too_long"
    INVALID_TEXT = "invalid_text"  # text no database can store (NUL, a lone surrogate)
    BINARY_NOT_SUPPORTED = "binary_not_supported"
    RATE_LIMITED = "rate_limited"
    NOT_FOUND = "not_found"  # does not exist *or* may not be seen: same code on purpose
    FORBIDDEN = "forbidden"  # visible, but this action is not allowed to this user
    UNAVAILABLE = "unavailable"  # storage down; nothing was stored
    TOO_MANY_CONNECTIONS = "too_many_connections"
    TOO_MANY_CURSORS = "too_many_cursors"  # a hello named more cursors than the server takes
    NOT_RECOVERED = "not_recovered"  # a cursor beyond the conversation's last seq: gone
    # attachments (issue 18): more files than one message may carry; a file that is not the
    # sender's to send (unknown, someone else's, evidence, already sent with another message)
    TOO_MANY_ATTACHMENTS = "too_many_attachments"
    ATTACHMENT_NOT_FOUND = "attachment_not_found"
    INTERNAL = "internal"


FRAME_TOO_LARGE: Final = ErrorCode.FRAME_TOO_LARGE
INVALID_JSON: Final = ErrorCode.INVALID_JSON
UNKNOWN_TYPE: Final = ErrorCode.UNKNOWN_TYPE
INVALID_FRAME: Final = ErrorCode.INVALID_FRAME
BODY_EMPTY: Final = ErrorCode.BODY_EMPTY
BODY_TOO_LONG: Final = ErrorCode.BODY_TOO_LONG
INVALID_TEXT: Final = ErrorCode.INVALID_TEXT
BINARY_NOT_SUPPORTED: Final = ErrorCode.BINARY_NOT_SUPPORTED
RATE_LIMITED: Final = ErrorCode.RATE_LIMITED
NOT_FOUND: Final = ErrorCode.NOT_FOUND
FORBIDDEN: Final = ErrorCode.FORBIDDEN
UNAVAILABLE: Final = ErrorCode.UNAVAILABLE
TOO_MANY_CONNECTIONS: Final = ErrorCode.TOO_MANY_CONNECTIONS
TOO_MANY_CURSORS: Final = ErrorCode.TOO_MANY_CURSORS
NOT_RECOVERED: Final = ErrorCode.NOT_RECOVERED
INTERNAL: Final = ErrorCode.INTERNAL


class CloseCode(IntEnum):
    """WebSocket close codes used by Kinline (see the module docstring for their meaning)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    INTERNAL = 1011
    RESTARTING = 1012
    TRY_AGAIN_LATER = 1013
    NOT_AUTHENTICATED = 4401
    FORBIDDEN_ORIGIN = 4403
    TOO_SLOW = 4008
    RATE_LIMITED = 4429
    TOO_MANY_CONNECTIONS = 4409


_FINAL_CLOSE_CODES: Final = frozenset(
    {CloseCode.NORMAL, CloseCode.NOT_AUTHENTICATED, CloseCode.FORBIDDEN_ORIGIN}
)


def is_final_close(code: int | None) -> bool:
    """Whether a client must stop after the server closed with ``code``.

    ``None`` (no close frame: 1006, a dropped TCP connection) and every other code mean
    "reconnect with back-off and resume from the cursors".
    """
    return code in _FINAL_CLOSE_CODES


# -- field types ------------------------------------------------------------------------------

ConvId: TypeAlias = Annotated[int, Meta(gt=0, le=_BIGINT_MAX)]
Seq: TypeAlias = Annotated[int, Meta(ge=0, le=_BIGINT_MAX)]
Cid: TypeAlias = Annotated[str, Meta(min_length=1, max_length=MAX_CID_CHARS)]
Resume: TypeAlias = Annotated[dict[ConvId, Seq], Meta(max_length=MAX_RESUME_ENTRIES)]
MAX_ATTACHMENT_IDS: Final = 20  # the hard cap per frame; the server's limit is lower
AttachmentIds: TypeAlias = Annotated[
    list[Annotated[int, Meta(gt=0, le=_BIGINT_MAX)]], Meta(max_length=MAX_ATTACHMENT_IDS)
]


# -- client -> server -------------------------------------------------------------------------


class _ClientBase(
    Struct, tag_field="type", frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    """Base of client frames: strict (unknown fields are errors), immutable."""


class Hello(_ClientBase, tag="hello", frozen=True):
    """First frame of every connection: per-conversation cursors to resume after."""

    resume: Resume = msgspec.field(default_factory=dict)


class Send(_ClientBase, tag="send", frozen=True):
    """Post a message; answered with an ``ack`` (same ``cid``) or an ``error`` (same ``cid``)."""

    conv: ConvId
    cid: Cid
    body: str
    kind: Literal["text", "note"] = "text"
    # uploaded files (POST /api/v1/attachments) sent with it; the body may then be empty
    attachments: AttachmentIds = msgspec.field(default_factory=list)


class Typing(_ClientBase, tag="typing", frozen=True):
    conv: ConvId


class Read(_ClientBase, tag="read", frozen=True):
    conv: ConvId
    seq: Seq


class Watch(_ClientBase, tag="watch", frozen=True):
    """Follow a conversation live; with ``after``, first replay every message after that seq."""

    conv: ConvId
    after: Seq | None = None


class Unwatch(_ClientBase, tag="unwatch", frozen=True):
    conv: ConvId


ClientFrame: TypeAlias = Hello | Send | Typing | Read | Watch | Unwatch

CLIENT_FRAME_TYPES: Final = frozenset({"hello", "send", "typing", "read", "watch", "unwatch"})


# -- server -> client -------------------------------------------------------------------------


class UserRef(Struct, frozen=True):
    """Who did something: ``{id, role, name}``."""

    id: int
    role: str
    name: str


class Limits(Struct, frozen=True):
    max_frame_bytes: int
    max_body_chars: int


class _ServerBase(Struct, tag_field="type", frozen=True, omit_defaults=True):
    """Base of server frames: unknown fields are ignored by decoders (forward compatible)."""


class Welcome(_ServerBase, tag="welcome", frozen=True):
    user: UserRef
    heartbeat: float  # seconds between server pings
    limits: Limits


class Ack(_ServerBase, tag="ack", frozen=True):
    cid: str
    conv: int
    seq: int
    id: int
    at: datetime


class AttachmentInfo(Struct, frozen=True, omit_defaults=True):
    """A file a message carries: read it at ``/api/v1/attachments/{id}`` (and its
    ``/thumbnail`` when ``thumbnail``); ``sha256`` is what the hash chain includes."""

    id: int
    type: str
    size: int
    name: str
    sha256: str
    thumbnail: bool = False
    width: int | None = None
    height: int | None = None


class MessageEvent(_ServerBase, tag="message", frozen=True):
    conv: int
    seq: int
    id: int
    sender: UserRef
    kind: Literal["text", "note", "system"]
    body: str
    at: datetime
    cid: str = ""  # the sender's cid; "" (omitted) for system messages
    attachments: list[AttachmentInfo] = msgspec.field(default_factory=list)


class TypingEvent(_ServerBase, tag="typing", frozen=True):
    conv: int
    user: UserRef


class ReadEvent(_ServerBase, tag="read", frozen=True):
    conv: int
    user: int
    seq: int


class ConversationEvent(_ServerBase, tag="conversation", frozen=True):
    """A life-cycle change. To the prison's staff with every field; to the relative (on its
    user topic) without ``note`` (a hand-over note is internal)."""

    event: Literal["created", "claimed", "transferred", "resolved", "reopened", "released"]
    conv: int
    state: str
    officer: int | None = None  # assigned officer after the change
    by: int | None = None  # who made the change
    note: str | None = None  # hand-over note (staff only)
    inmate: int | None = None
    relative: int | None = None
    cycle: int | None = None
    waiting_since: datetime | None = None  # start of the current wait, while waiting


class PresenceEvent(_ServerBase, tag="presence", frozen=True):
    prison: int
    on_duty: int
    officers: list[UserRef] | None = None


class InfoEvent(_ServerBase, tag="info", frozen=True):
    inmate: int
    field: str


class AnnouncementEvent(_ServerBase, tag="announcement", frozen=True):
    id: int
    title: str
    body: str
    at: datetime
    prison: int | None = None  # None: bureau-wide
    open_day: date | None = None


class VisitEvent(_ServerBase, tag="visit", frozen=True):
    """A visit request changed (to its relative, and to the prison's staff)."""

    id: int
    inmate: int
    state: str
    slot_start: datetime
    reason: str | None = None


class ComplaintEvent(_ServerBase, tag="complaint", frozen=True):
    """A complaint changed state; never sent to officers of the prison complained about."""

    id: int
    reference: str
    state: str
    message: str = ""


class LinkEvent(_ServerBase, tag="link", frozen=True):
    id: int
    state: str
    reason: str | None = None
    reason_code: str | None = None  # a refusal's published reason (GET /reasons)


class OpenerRef(Struct, frozen=True):
    name: str
    title: str  # the supervisor's public title


class OpeningEvent(_ServerBase, tag="opening", frozen=True):
    """A supervisor opened the conversation (audited first): told to whoever watches it,
    its relative included. ``GET /conversations/{id}/access`` lists every opening."""

    conv: int
    who: OpenerRef
    at: datetime
    via: str  # "watch" or "history"


class ErrorFrame(_ServerBase, tag="error", frozen=True):
    """``code`` is an :class:`ErrorCode` value, typed ``str`` so new codes decode on old clients.
    ``retry_after`` (seconds), on ``rate_limited`` and ``unavailable`` where the server can
    tell: when sending the same frame again (same ``cid``) may succeed."""

    code: str
    message: str
    cid: str | None = None
    retry_after: float | None = None


class Subscribed(_ServerBase, tag="subscribed", frozen=True):
    """The answer to ``hello`` and ``watch``: these conversations are followed live (their
    replay queued before this frame), each with its last seq when the subscription began.

    A conversation whose cursor could not be resumed from (beyond its last seq: the position
    is gone) is followed from ``convs[conv]``, below the client's cursor, and an ``error
    {code: not_recovered}`` naming it comes first: the client drops what it holds past
    ``convs[conv]`` and reloads that history over REST."""

    convs: dict[int, int]


ServerFrame: TypeAlias = (
    Welcome
    | Ack
    | MessageEvent
    | TypingEvent
    | ReadEvent
    | ConversationEvent
    | PresenceEvent
    | InfoEvent
    | AnnouncementEvent
    | LinkEvent
    | VisitEvent
    | ComplaintEvent
    | OpeningEvent
    | ErrorFrame
    | Subscribed
)

SERVER_FRAME_TYPES: Final = frozenset(
    {
        "welcome",
        "ack",
        "message",
        "typing",
        "read",
        "conversation",
        "presence",
        "info",
        "announcement",
        "link",
        "visit",
        "complaint",
        "opening",
        "error",
        "subscribed",
    }
)


# -- errors -----------------------------------------------------------------------------------


class ProtocolError(Struct, frozen=True):
    """A frame that could not be accepted. Returned (not raised) by the decoders."""

    code: ErrorCode
    message: str
    cid: str | None = None

    def frame(self) -> ErrorFrame:
        """The ``error`` frame to send back to the peer."""
        return ErrorFrame(code=self.code.value, message=self.message, cid=self.cid)


# -- codec ------------------------------------------------------------------------------------


class _Probe(Struct):
    """Lenient view of a frame, used only on error paths to classify the error."""

    type: Any = None
    cid: Any = None


_ENCODER: Final = msgspec.json.Encoder()
_CLIENT_DECODER: Final[msgspec.json.Decoder[ClientFrame]] = msgspec.json.Decoder(ClientFrame)
_SERVER_DECODER: Final[msgspec.json.Decoder[ServerFrame]] = msgspec.json.Decoder(ServerFrame)
_PROBE_DECODER: Final = msgspec.json.Decoder(_Probe)

# What msgspec may raise on hostile input besides ValidationError.
_PARSE_ERRORS: Final = (msgspec.DecodeError, UnicodeError, RecursionError, OverflowError)


def encode(frame: ServerFrame | ClientFrame) -> bytes:
    """Encode a frame to JSON bytes (UTF-8), with the one shared encoder."""
    return _ENCODER.encode(frame)


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 3] + "..."


def _to_bytes(data: bytes | str, max_frame_bytes: int | None) -> bytes | ProtocolError:
    """UTF-8 bytes of ``data``, or the error for an oversized or unencodable frame."""
    if isinstance(data, str):
        if max_frame_bytes is not None and len(data) > max_frame_bytes:
            return ProtocolError(FRAME_TOO_LARGE, f"frame exceeds {max_frame_bytes} bytes")
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            return ProtocolError(INVALID_JSON, "frame is not valid UTF-8 text")
    else:
        raw = data if isinstance(data, bytes) else bytes(memoryview(data))
    if max_frame_bytes is not None and len(raw) > max_frame_bytes:
        return ProtocolError(FRAME_TOO_LARGE, f"frame exceeds {max_frame_bytes} bytes")
    return raw


def _classify(raw: bytes, exc: msgspec.ValidationError, known: frozenset[str]) -> ProtocolError:
    """Turn a validation failure into the right error, re-parsing leniently (error path)."""
    try:
        probe = _PROBE_DECODER.decode(raw)
    except msgspec.ValidationError:
        return ProtocolError(INVALID_JSON, "frame must be a JSON object")
    except _PARSE_ERRORS as parse_exc:
        return ProtocolError(INVALID_JSON, _truncate(f"invalid JSON: {parse_exc}"))
    cid = probe.cid if isinstance(probe.cid, str) else None
    kind = probe.type
    if not isinstance(kind, str):
        message = "missing frame type" if kind is None else "frame type must be a string"
        return ProtocolError(UNKNOWN_TYPE, message, cid)
    if kind not in known:
        return ProtocolError(UNKNOWN_TYPE, _truncate(f"unknown frame type {kind[:50]!r}"), cid)
    return ProtocolError(INVALID_FRAME, _truncate(str(exc)), cid)


def decode_client(
    data: bytes | str,
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    max_body_chars: int = DEFAULT_MAX_BODY_CHARS,
) -> ClientFrame | ProtocolError:
    """Decode one frame received by the server. Never raises.

    Returns the typed frame, or a :class:`ProtocolError` to answer with ``error.frame()``.
    """
    try:
        raw = _to_bytes(data, max_frame_bytes)
        if isinstance(raw, ProtocolError):
            return raw
        try:
            frame = _CLIENT_DECODER.decode(raw)
        except msgspec.ValidationError as exc:
            return _classify(raw, exc, CLIENT_FRAME_TYPES)
        except _PARSE_ERRORS as exc:
            return ProtocolError(INVALID_JSON, _truncate(f"invalid JSON: {exc}"))
        if type(frame) is Send:
            if len(frame.body) > max_body_chars:
                return ProtocolError(
                    BODY_TOO_LONG, f"body exceeds {max_body_chars} characters", frame.cid
                )
            if not frame.body.strip() and not frame.attachments:
                return ProtocolError(BODY_EMPTY, "body is empty", frame.cid)
            if not (storable(frame.body) and storable(frame.cid)):
                return ProtocolError(
                    INVALID_TEXT, "text may not contain NUL or lone surrogates", frame.cid
                )
        return frame
    except Exception:  # the guarantee: log the bug, never leak it
        _log.exception("unexpected error decoding a client frame")
        return ProtocolError(INTERNAL, "internal error")


def decode_server(data: bytes | str) -> ServerFrame | ProtocolError:
    """Decode one frame received by a client. Never raises, like :func:`decode_client`.

    A frame of a type this client does not know is ``unknown_type``; callers should skip it
    (the server may be newer). No size limit is applied here: the socket layer bounds frames.
    """
    try:
        raw = _to_bytes(data, None)
        if isinstance(raw, ProtocolError):
            return raw
        try:
            return _SERVER_DECODER.decode(raw)
        except msgspec.ValidationError as exc:
            return _classify(raw, exc, SERVER_FRAME_TYPES)
        except _PARSE_ERRORS as exc:
            return ProtocolError(INVALID_JSON, _truncate(f"invalid JSON: {exc}"))
    except Exception:
        _log.exception("unexpected error decoding a server frame")
        return ProtocolError(INTERNAL, "internal error")
