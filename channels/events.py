"""Building the server's outgoing frames, once: stored records -> protocol frames -> bytes.

``text_frame`` makes the complete WebSocket frame (server frames are unmasked, so the bytes are
the same for every socket): the hub builds it once per event and writes it to each transport.

The topic names are the one vocabulary of telling and listening: events are published on them
only by ``server/audience.py`` (which decides, with the policy, who is told), and sockets join
them in the gateway (which decides what each socket listens to).
"""

from __future__ import annotations

import struct
import sys

from channels import envelope
from channels.protocol import AttachmentInfo, MessageEvent, UserRef, encode
from domain.records import Attachment, Message


def attachment_info(found: Attachment) -> AttachmentInfo:
    return AttachmentInfo(
        id=found.id,
        type=found.content_type,
        size=found.size,
        name=found.name,
        sha256=found.sha256,
        thumbnail=found.thumb_key is not None,
        width=found.width,
        height=found.height,
    )


def message_event(message: Message) -> MessageEvent:
    sender = UserRef(message.sender_id, message.sender_role, message.sender_name)
    return MessageEvent(
        conv=message.conversation_id,
        seq=message.seq,
        id=message.id,
        sender=sender,
        kind=message.kind,
        body=message.body,
        at=message.created_at,
        cid=message.cid,
        attachments=[attachment_info(a) for a in message.attachments],
    )


def audience(message: Message) -> str:
    return envelope.STAFF if message.kind == "note" else envelope.ALL


def message_bytes(message: Message) -> bytes:
    return encode(message_event(message))


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked WebSocket text frame carrying ``payload`` (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def conversation_topic(conv_id: int) -> str:
    return f"c:{conv_id}"


def user_topic(user_id: int) -> str:
    return f"u:{user_id}"


# A prison's topics are interned: every socket following one keeps its name (in
# ``Connection.topics``), and they are a few shared by thousands of sockets.


def prison_staff_topic(prison_id: int) -> str:
    return sys.intern(f"p:{prison_id}:staff")


def prison_relatives_topic(prison_id: int) -> str:
    return sys.intern(f"p:{prison_id}:relatives")


BUREAU_TOPIC = "bureau"


def conversation_of(topic: str) -> int | None:
    """The conversation id of an ordered (conversation) topic, else None."""
    return int(topic[2:]) if topic.startswith("c:") else None
