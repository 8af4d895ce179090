"""What travels through the broker: a one-line header, then the encoded frame, untouched.

    b"<origin> <seq> <audience> <sent_ms>\\n" + frame

- ``origin``: the publishing hub's id, so a hub ignores its own echo (it delivered locally first);
- ``seq``: the message's seq on a conversation topic, ``0`` for unordered events (typing...);
- ``audience``: ``a`` everyone on the topic, ``s`` staff only (private notes);
- ``sent_ms``: wall-clock publish time, for the delivery-latency histogram.

The header is parsed without JSON, and the frame is never decoded on the way: each process
encodes an event once and every process writes those same bytes to its sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL = "a"
STAFF = "s"


class BadEnvelope(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Envelope:
    origin: str
    seq: int
    audience: str
    sent_ms: int
    frame: bytes

    def pack(self) -> bytes:
        head = f"{self.origin} {self.seq} {self.audience} {self.sent_ms}\n".encode()
        return head + self.frame


def unpack(data: bytes) -> Envelope:
    head, newline, frame = data.partition(b"\n")
    parts = head.split(b" ")
    if not newline or len(parts) != 4:
        raise BadEnvelope("not a kinline envelope")
    origin, seq, audience, sent_ms = parts
    try:
        return Envelope(origin.decode(), int(seq), audience.decode(), int(sent_ms), frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEnvelope(str(exc)) from exc
