"""An outside checker of a conversation's verifiable record (DESIGN.md section 9), as a family's
lawyer would write it: a few lines of hashlib and json, nothing of Kinline's."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def holds(record: dict[str, Any]) -> bool:
    """An outside checker: every visible message's hash from the previous one, then the head."""
    h = bytes(32)
    for m in record["messages"]:
        if "body" in m and not m.get("purged"):
            c = {k: m[k] for k in ("at_us", "body", "kind", "sender", "seq") if k in m}
            c["conv"] = record["conversation"]["id"]
            if m.get("attachments"):
                c["attachments"] = m["attachments"]
            text = json.dumps(c, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            h = hashlib.sha256(h + text.encode()).digest()
            if h.hex() != m["hash"]:
                return False
        else:  # a note shown as its hash, or a purged text: its hash as given
            h = bytes.fromhex(m["hash"])
    return bool(h.hex() == record["head"])
