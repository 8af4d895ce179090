"""History paging shared by both stores: one rule for after / before / latest."""

from __future__ import annotations

MAX_PAGE = 500


def clamp_limit(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))


def page_bounds(after: int | None, before: int | None) -> tuple[list[tuple[str, int]], bool]:
    """The seq conditions (``("m.seq >", after)``...) a page needs, and whether it is read
    newest-first (then reversed): that is how "the last N before X", or the latest N, is read."""
    bounds = [
        (op, value) for op, value in (("m.seq >", after), ("m.seq <", before)) if value is not None
    ]
    return bounds, after is None
