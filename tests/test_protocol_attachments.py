"""The ``send`` frame with files and the ``message`` frame that carries them (issue 18)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from channels.events import message_bytes
from channels.protocol import (
    MAX_ATTACHMENT_IDS,
    MessageEvent,
    ProtocolError,
    Send,
    decode_client,
    decode_server,
)
from domain.records import Attachment, Message

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_a_send_may_carry_files_and_then_an_empty_body() -> None:
    frame = decode_client(
        '{"type": "send", "conv": 1, "cid": "a", "body": "", "attachments": [7, 8]}'
    )
    assert isinstance(frame, Send) and frame.attachments == [7, 8]
    empty = decode_client('{"type": "send", "conv": 1, "cid": "b", "body": "  "}')
    assert isinstance(empty, ProtocolError) and empty.code == "body_empty"


def test_file_ids_are_bounded_and_positive() -> None:
    ids = list(range(1, MAX_ATTACHMENT_IDS + 2))
    for bad in (ids, [0], [-1], ["x"], [2**63]):
        raw = {"type": "send", "conv": 1, "cid": "c", "body": "x", "attachments": bad}
        frame = decode_client(json.dumps(raw))
        assert isinstance(frame, ProtocolError) and frame.code == "invalid_frame", bad
        assert frame.cid == "c"


def test_a_message_frame_names_each_file() -> None:
    photo = Attachment(
        5, 3, "image/jpeg", "家.jpg", 1234, "ab" * 32, "a/00/x", AT, 640, 480, "t/00/y"
    )
    message = Message(9, 1, 4, 3, "relative", "Chen Mei", "c1", "text", "", AT, (photo,))
    frame = decode_server(message_bytes(message))
    assert isinstance(frame, MessageEvent)
    [info] = frame.attachments
    assert (info.id, info.type, info.size, info.name, info.sha256, info.thumbnail) == (
        5,
        "image/jpeg",
        1234,
        "家.jpg",
        "ab" * 32,
        True,
    )
    assert b"a/00/x" not in message_bytes(message)  # object keys never leave the server
    plain = Message(10, 1, 5, 3, "relative", "Chen Mei", "c2", "text", "hi", AT)
    assert b"attachments" not in message_bytes(plain)  # omitted when there are none
