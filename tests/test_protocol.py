"""Sans-I/O tests of the kinline.v1 codec: no sockets, every error path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels import protocol as p
from channels.protocol import (
    CLIENT_FRAME_TYPES,
    SERVER_FRAME_TYPES,
    Ack,
    AnnouncementEvent,
    ClientFrame,
    CloseCode,
    ConversationEvent,
    ErrorCode,
    ErrorFrame,
    Hello,
    InfoEvent,
    Limits,
    LinkEvent,
    MessageEvent,
    PresenceEvent,
    ProtocolError,
    Read,
    ReadEvent,
    Send,
    ServerFrame,
    Typing,
    TypingEvent,
    Unwatch,
    UserRef,
    Watch,
    Welcome,
    decode_client,
    decode_server,
    encode,
    is_final_close,
)

AT = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
ALICE = UserRef(id=7, role="officer", name="Alice")

CLIENT_FRAMES: list[ClientFrame] = [
    Hello(),
    Hello(resume={1: 0, 42: 17}),
    Send(conv=3, cid="c-1", body="hello"),
    Send(conv=3, cid="x" * 64, body="private", kind="note"),
    Typing(conv=1),
    Read(conv=2, seq=0),
    Read(conv=2, seq=99),
    Watch(conv=5),
    Unwatch(conv=5),
]

SERVER_FRAMES: list[ServerFrame] = [
    Welcome(user=ALICE, heartbeat=25.0, limits=Limits(max_frame_bytes=16384, max_body_chars=2000)),
    Ack(cid="c-1", conv=3, seq=4, id=1001, at=AT),
    MessageEvent(
        conv=3, seq=4, id=1001, sender=ALICE, kind="text", body="hi é 🙂", at=AT, cid="c-1"
    ),
    MessageEvent(conv=3, seq=5, id=1002, sender=ALICE, kind="system", body="claimed", at=AT),
    TypingEvent(conv=3, user=ALICE),
    ReadEvent(conv=3, user=7, seq=4),
    ConversationEvent(event="claimed", conv=3, state="active", officer=7, by=7),
    ConversationEvent(event="resolved", conv=3, state="resolved", note="done"),
    PresenceEvent(prison=1, on_duty=2),
    PresenceEvent(prison=1, on_duty=1, officers=[ALICE]),
    InfoEvent(inmate=9, field="health"),
    AnnouncementEvent(id=1, title="Visits", body="Closed Monday", at=AT, prison=2),
    AnnouncementEvent(id=2, title="All", body="Bureau-wide", at=AT),
    LinkEvent(id=4, state="verified"),
    LinkEvent(id=5, state="rejected", reason="evidence unreadable"),
    ErrorFrame(code="not_found", message="no such conversation"),
    ErrorFrame(code="body_empty", message="body is empty", cid="c-2"),
]


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def send_obj(**overrides: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": "send", "conv": 1, "cid": "c-9", "body": "hi"}
    obj.update(overrides)
    return obj


def expect_error(data: bytes | str, code: ErrorCode, **kwargs: Any) -> ProtocolError:
    result = decode_client(data, **kwargs)
    assert isinstance(result, ProtocolError), result
    assert result.code is code, result
    assert len(result.message) <= 200
    return result


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=repr)
def test_client_frame_round_trip(frame: ClientFrame) -> None:
    data = encode(frame)
    assert decode_client(data) == frame
    assert decode_client(data.decode()) == frame
    assert json.loads(data)["type"] == type(frame).__struct_config__.tag


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=repr)
def test_server_frame_round_trip(frame: ServerFrame) -> None:
    data = encode(frame)
    assert decode_server(data) == frame
    assert decode_server(data.decode()) == frame


def test_wire_shapes() -> None:
    assert json.loads(encode(Hello(resume={12: 3}))) == {"type": "hello", "resume": {"12": 3}}
    # omit_defaults: kind "text" and a None cid do not travel
    assert json.loads(encode(Send(conv=1, cid="a", body="b"))) == {
        "type": "send",
        "conv": 1,
        "cid": "a",
        "body": "b",
    }
    ack = json.loads(encode(Ack(cid="a", conv=1, seq=2, id=3, at=AT)))
    assert ack["at"] == "2024-05-01T12:30:15.123000Z"
    assert json.loads(encode(ErrorFrame(code="internal", message="m"))) == {
        "type": "error",
        "code": "internal",
        "message": "m",
    }


def test_decode_accepts_explicit_defaults_and_any_field_order() -> None:
    raw = dumps({"body": "b", "kind": "text", "cid": "a", "conv": 1, "type": "send"})
    assert decode_client(raw) == Send(conv=1, cid="a", body="b")
    raw = dumps({"type": "error", "code": "x", "message": "m", "cid": None})
    assert decode_server(raw) == ErrorFrame(code="x", message="m")


def test_server_frames_tolerate_unknown_fields() -> None:
    raw = dumps({"type": "link", "id": 1, "state": "verified", "added_in_v2": [1, 2]})
    assert decode_server(raw) == LinkEvent(id=1, state="verified")


def test_same_tag_different_unions() -> None:
    assert decode_client(dumps({"type": "typing", "conv": 1})) == Typing(conv=1)
    user = {"id": 7, "role": "officer", "name": "Alice"}
    assert decode_server(dumps({"type": "typing", "conv": 1, "user": user})) == TypingEvent(
        conv=1, user=ALICE
    )


def test_protocol_error_frame() -> None:
    err = ProtocolError(ErrorCode.BODY_EMPTY, "body is empty", "c-1")
    frame = err.frame()
    assert frame == ErrorFrame(code="body_empty", message="body is empty", cid="c-1")
    assert decode_server(encode(frame)) == frame


def test_constants() -> None:
    assert p.SUBPROTOCOL == "kinline.v1"
    assert p.RATE_LIMITED.value == "rate_limited"
    assert {c.value for c in ErrorCode} >= {
        "frame_too_large",
        "invalid_json",
        "unknown_type",
        "invalid_frame",
        "body_empty",
        "body_too_long",
        "binary_not_supported",
        "rate_limited",
        "not_found",
        "forbidden",
        "unavailable",
        "too_many_connections",
        "internal",
    }
    assert CloseCode.RESTARTING.value == 1012
    assert CloseCode.NOT_AUTHENTICATED.value == 4401
    assert CloseCode.TOO_SLOW.value == 4008
    assert is_final_close(4401)
    assert is_final_close(CloseCode.FORBIDDEN_ORIGIN)
    assert is_final_close(1000)
    for code in (None, 1001, 1006, 1011, 1012, 4008, 4409, 4429):
        assert not is_final_close(code)


# -- every error code from a concrete bad input -----------------------------------------------


def test_frame_too_large_checked_before_parsing() -> None:
    expect_error("x" * 16385, ErrorCode.FRAME_TOO_LARGE)  # not JSON: size wins
    expect_error(b"{" * 100, ErrorCode.FRAME_TOO_LARGE, max_frame_bytes=99)
    ok = dumps(send_obj(body="a" * 40))
    assert isinstance(decode_client(ok, max_frame_bytes=len(ok)), Send)
    expect_error(ok, ErrorCode.FRAME_TOO_LARGE, max_frame_bytes=len(ok) - 1)


def test_frame_size_is_counted_in_utf8_bytes() -> None:
    raw = json.dumps(send_obj(body="é" * 30), ensure_ascii=False)
    size = len(raw.encode())
    assert len(raw) < size
    assert isinstance(decode_client(raw, max_frame_bytes=size), Send)
    expect_error(raw, ErrorCode.FRAME_TOO_LARGE, max_frame_bytes=size - 1)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"{",
        b"not json",
        b"NaN",
        b'{"type":"send","conv":NaN}',
        b'{"type":"send","conv":1,"cid":"a","body":"b"} trailing',
        b'{"type":"send","conv":"x"} trailing',  # validation error first, then bad JSON
        b"[1, 2]",
        b"42",
        b'"send"',
        b"null",
        b"\xff\xfe\x00",
        b'{"type":"send","conv":1,"cid":"a","body":"\xff"}',  # invalid UTF-8 in a string
        '{"type":"send","conv":1,"cid":"a","body":"\ud800"}',  # lone surrogate in a str
        b'{"type":"send","conv":1,"cid":"a","body":"\\ud800"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 2000 + b"1" + b"}" * 2000,  # valid JSON, but nested too deeply
    ],
    ids=lambda data: repr(data)[:60],
)
def test_invalid_json(data: bytes | str) -> None:
    expect_error(data, ErrorCode.INVALID_JSON)


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"conv": 1},
        {"type": "nope", "conv": 1},
        {"type": "message", "conv": 1},  # a server type is not a client type
        {"type": 3},
        {"type": None},
        {"type": ["send"]},
        {"type": "SEND", "conv": 1},
    ],
    ids=repr,
)
def test_unknown_type(obj: dict[str, Any]) -> None:
    expect_error(dumps(obj), ErrorCode.UNKNOWN_TYPE)


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"type": "send", "conv": 1, "body": "b"}, "cid"),  # missing field
        (send_obj(conv="1"), "conv"),  # wrong type
        (send_obj(conv=1.5), "conv"),
        (send_obj(conv=True), "conv"),
        (send_obj(conv=0), "conv"),  # conv ids are positive
        (send_obj(conv=-3), "conv"),
        (send_obj(conv=10**30), "conv"),  # huge number
        (send_obj(conv=1e300), "conv"),
        (send_obj(extra=1), "extra"),  # unknown field
        (send_obj(cid=""), "cid"),
        (send_obj(cid="x" * 65), "cid"),
        (send_obj(cid=5), "cid"),
        (send_obj(body=None), "body"),
        (send_obj(kind="system"), "kind"),  # clients may not send system messages
        ({"type": "read", "conv": 1, "seq": -1}, "seq"),  # negative seq
        ({"type": "read", "conv": 1}, "seq"),
        ({"type": "typing", "conv": 0}, "conv"),
        ({"type": "watch"}, "conv"),
        ({"type": "unwatch", "conv": "7"}, "conv"),
        ({"type": "hello", "resume": []}, "resume"),
        ({"type": "hello", "resume": {"x": 1}}, "resume"),
        ({"type": "hello", "resume": {"0": 1}}, "resume"),
        ({"type": "hello", "resume": {"1": -1}}, "resume"),
        ({"type": "hello", "resume": {str(i): 0 for i in range(1, 1002)}}, "resume"),
    ],
    ids=repr,
)
def test_invalid_frame(obj: dict[str, Any], field: str) -> None:
    err = expect_error(dumps(obj), ErrorCode.INVALID_FRAME, max_frame_bytes=1 << 20)
    assert field in err.message


def test_resume_at_the_entry_limit_is_accepted() -> None:
    obj = {"type": "hello", "resume": {str(i): i for i in range(1, 1001)}}
    frame = decode_client(dumps(obj), max_frame_bytes=1 << 20)
    assert isinstance(frame, Hello)
    assert len(frame.resume) == 1000
    assert frame.resume[5] == 5


def test_number_out_of_range_is_invalid_frame() -> None:
    raw = '{"type":"send","conv":1e999,"cid":"c-9","body":"b"}'
    err = expect_error(raw, ErrorCode.INVALID_FRAME)
    assert "conv" in err.message
    assert err.cid == "c-9"


def test_invalid_frame_message_is_truncated() -> None:
    err = expect_error(
        dumps({"type": "send", "conv": 1, "cid": "a", "body": "b", "x" * 500: 1}),
        ErrorCode.INVALID_FRAME,
    )
    assert err.message.endswith("...")


@pytest.mark.parametrize("body", ["", " ", "\n\t  \u3000"])
def test_body_empty(body: str) -> None:
    err = expect_error(dumps(send_obj(body=body)), ErrorCode.BODY_EMPTY)
    assert err.cid == "c-9"


def test_body_too_long() -> None:
    assert isinstance(decode_client(dumps(send_obj(body="a" * 2000))), Send)
    err = expect_error(dumps(send_obj(body="a" * 2001)), ErrorCode.BODY_TOO_LONG)
    assert err.cid == "c-9"
    assert isinstance(decode_client(dumps(send_obj(body="🙂" * 10)), max_body_chars=10), Send)
    expect_error(dumps(send_obj(body="🙂" * 11)), ErrorCode.BODY_TOO_LONG, max_body_chars=10)


@pytest.mark.parametrize(
    "obj",
    [
        send_obj(conv=0),
        send_obj(extra=True),
        send_obj(kind="system"),
        {"cid": "c-9", "type": "send"},
        {"cid": "c-9", "type": "what"},
    ],
    ids=repr,
)
def test_cid_is_echoed_on_a_bad_send(obj: dict[str, Any]) -> None:
    result = decode_client(dumps(obj))
    assert isinstance(result, ProtocolError)
    assert result.cid == "c-9"
    assert result.frame().cid == "c-9"


def test_cid_not_echoed_when_not_a_string() -> None:
    result = decode_client(dumps(send_obj(cid=12)))
    assert isinstance(result, ProtocolError)
    assert result.cid is None


def test_decode_server_errors() -> None:
    assert isinstance(decode_server(b"\xff"), ProtocolError)
    err = decode_server(dumps({"type": "from_the_future", "x": 1}))
    assert isinstance(err, ProtocolError)
    assert err.code is ErrorCode.UNKNOWN_TYPE
    err = decode_server(dumps({"type": "ack", "cid": "a"}))
    assert isinstance(err, ProtocolError)
    assert err.code is ErrorCode.INVALID_FRAME
    assert err.cid == "a"


def test_unexpected_exception_becomes_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Boom:
        def decode(self, data: bytes) -> None:
            raise ZeroDivisionError

    monkeypatch.setattr(p, "_CLIENT_DECODER", Boom())
    expect_error(b"{}", ErrorCode.INTERNAL)


# -- never raises (property-based) -----------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
field_names = st.sampled_from(
    ["conv", "cid", "body", "kind", "seq", "resume", "user", "type", "x"]
) | st.text(max_size=6)
field_values = (
    json_values
    | st.integers(min_value=-2, max_value=5)
    | st.sampled_from(["text", "note", "system", "", " ", "c-1"])
    | st.dictionaries(st.integers(-1, 5).map(str), st.integers(-1, 5), max_size=3)
)
typed_objects = st.builds(
    lambda kind, fields: {**fields, "type": kind},
    st.sampled_from(sorted(CLIENT_FRAME_TYPES | SERVER_FRAME_TYPES | {"", "nope"})),
    st.dictionaries(field_names, field_values, max_size=6),
)


def check_client(data: bytes | str) -> None:
    result = decode_client(data)
    assert isinstance(result, ProtocolError | Hello | Send | Typing | Read | Watch | Unwatch)
    if isinstance(result, ProtocolError):
        assert result.code is not ErrorCode.INTERNAL, result
        encode(result.frame())
    else:
        assert decode_client(encode(result)) == result


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check_client(data)
    assert decode_server(data) is not None


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(data: str) -> None:
    check_client(data)
    assert decode_server(data) is not None


@FUZZ
@given(json_values)
def test_arbitrary_json_never_raises(value: Any) -> None:
    check_client(dumps(value))


@FUZZ
@given(typed_objects)
def test_typed_objects_never_raise(obj: dict[str, Any]) -> None:
    data = dumps(obj)
    check_client(data)
    result = decode_client(data)
    if isinstance(result, ProtocolError) and result.code is not ErrorCode.FRAME_TOO_LARGE:
        if obj["type"] in CLIENT_FRAME_TYPES:
            assert result.code is not ErrorCode.UNKNOWN_TYPE
        else:
            assert result.code is ErrorCode.UNKNOWN_TYPE
        if isinstance(obj.get("cid"), str):
            assert result.cid == obj["cid"]
    server = decode_server(data)
    if not isinstance(server, ProtocolError):
        assert decode_server(encode(server)) == server


@FUZZ
@given(st.sampled_from(CLIENT_FRAMES + SERVER_FRAMES), st.integers(0, 80), st.binary(max_size=4))
def test_corrupted_frames_never_raise(frame: Any, cut: int, junk: bytes) -> None:
    data = encode(frame)
    check_client(data[:cut] + junk + data[cut:])
    assert decode_server(data[:cut] + junk) is not None


def test_happy_path_parses_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lenient re-parse runs only on error paths."""

    class Forbidden:
        def decode(self, data: bytes) -> None:
            raise AssertionError("re-parsed a valid frame")

    monkeypatch.setattr(p, "_PROBE_DECODER", Forbidden())
    for frame in CLIENT_FRAMES:
        assert decode_client(encode(frame)) == frame
