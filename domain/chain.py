"""The hash chains of DESIGN.md section 9: canonical forms, the hash step and the anchor digest.

Pure (hashlib and json only), so verify, the export, the SQLite adaptor and any outside
checker agree on one definition; PostgreSQL computes the same bytes in SQL (migration 0014),
and a test on both databases holds the two to it.

- A message's canonical form ``C(m)`` is the UTF-8 JSON of ``{"at_us", "body", "conv",
  "kind", "sender", "seq"}``, plus ``"attachments"`` (the lowercase hex SHA-256 of each file,
  in the message's order) only when there are any; keys sorted, no whitespace, non-ASCII not
  escaped (``json.dumps(ensure_ascii=False, sort_keys=True, separators=(",", ":"))``).
- An audit entry's canonical form ``A(e)`` is the same encoding of ``{"action", "actor_id",
  "after", "at_us", "before", "id", "object_id", "object_type", "prison_id"}``: its columns,
  ``at`` as microseconds, absent values as ``null``, ``before``/``after`` as the JSON objects
  stored (their keys sorted too).
- Each chain starts at ``GENESIS`` (32 zero bytes): ``h_n = SHA-256(h_(n-1) || form)``.
  Messages chain per conversation in ``seq`` order; audit entries form one chain in the order
  the database appended them (``audit_entries.chain_n``).
- The anchor digest is SHA-256 of the UTF-8 lines ``"<conversation id>:<head hex>\\n"`` for
  every conversation with a message, by id, then ``"audit:<audit head hex>\\n"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

GENESIS = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical UTF-8 JSON: keys sorted, no whitespace, non-ASCII as is."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.encode()


def at_us(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch (exact)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def message_form(
    *,
    at_us: int,
    body: str,
    conv: int,
    kind: str,
    sender: int,
    seq: int,
    attachments: Sequence[str] = (),
) -> bytes:
    """``C(m)``; ``attachments`` are the hex SHA-256 of the message's files (none: omitted)."""
    fields: dict[str, Any] = {
        "at_us": at_us,
        "body": body,
        "conv": conv,
        "kind": kind,
        "sender": sender,
        "seq": seq,
    }
    if attachments:
        fields["attachments"] = [a.lower() for a in attachments]
    return canonical_json(fields)


def audit_form(
    *,
    id: int,
    at_us: int,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: int | None,
    prison_id: int | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> bytes:
    """``A(e)``, an audit entry's canonical form."""
    return canonical_json(
        {
            "action": action,
            "actor_id": actor_id,
            "after": after,
            "at_us": at_us,
            "before": before,
            "id": id,
            "object_id": object_id,
            "object_type": object_type,
            "prison_id": prison_id,
        }
    )


def step(previous: bytes, form: bytes) -> bytes:
    """One link: ``SHA-256(previous || form)``."""
    return hashlib.sha256(previous + form).digest()


def anchor_digest(heads: Iterable[tuple[int, bytes]], audit_head: bytes) -> bytes:
    """The digest of one anchor: the conversations' heads (id, head) and the audit head."""
    lines = "".join(f"{conv}:{head.hex()}\n" for conv, head in sorted(heads))
    return hashlib.sha256((lines + f"audit:{audit_head.hex()}\n").encode()).digest()
