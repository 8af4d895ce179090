"""Token buckets (server/ratelimit.py)."""

from __future__ import annotations

from server.ratelimit import RateLimiter


def test_buckets_refilled_by_now_are_forgotten_so_memory_stays_bounded() -> None:
    """Regression: pruning compared the *stored* tokens with the burst, so a key used once
    (its stored tokens below the burst forever) was never forgotten, and past 100,000 keys
    every allowed frame rebuilt the whole table on the event loop."""
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=1, clock=lambda: now[0])
    for key in range(100_001):
        assert limiter.allow(key)
    now[0] = 10.0  # every bucket has long refilled
    assert limiter.allow("fresh")
    assert len(limiter._buckets) <= 1  # only the key just used is remembered
    assert limiter.allow(5)  # a forgotten key starts full, as it would have anyway


def test_a_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    assert limiter.retry_after("a") == 0.5
    now[0] = 0.5
    assert limiter.allow("a") and not limiter.allow("a")
