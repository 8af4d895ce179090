"""A Jepsen-style check of what readers received against what senders had acknowledged."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass


@dataclass
class Verdict:
    lost: list[int]  # acked, never delivered
    duplicated: list[int]  # delivered more than once
    unexpected: list[int]  # delivered, never acked (and not a known unacked send)
    reordered: int  # deliveries whose seq is not above the previous one

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected or self.reordered)


def check(acked: set[int], delivered: list[int], maybe: set[int] | None = None) -> Verdict:
    """``acked``: seqs whose ack a sender got; ``delivered``: seqs in the order one reader got
    them; ``maybe``: seqs that may exist without an ack (sent, connection lost before ack)."""
    counts = Counter(delivered)
    got = set(delivered)
    reordered = sum(1 for a, b in itertools.pairwise(delivered) if b <= a)
    return Verdict(
        lost=sorted(acked - got),
        duplicated=sorted(s for s, n in counts.items() if n > 1),
        unexpected=sorted(got - acked - (maybe or set())),
        reordered=reordered,
    )
