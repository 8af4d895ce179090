"""``kinline bench WORKLOAD ...``: load generators run by hand; each prints a JSON result.

Workloads: ``chat`` (persisted send -> ack -> deliver latency and throughput, ``--max`` to find
the rate where p99 passes 200 ms), ``broadcast`` (one event to N sockets), ``idle`` (server
RSS per idle socket), ``connect`` (authenticated connects per second), ``storm`` (a worker
killed under N sockets: time until all resumed), ``search`` (the search
statement explained on a million generated messages, PostgreSQL alone),
``wechat`` (an officer's answer to the fake WeChat platform's customer-service call, p50/p99,
and the outbox while the platform fails).
``kinline bench WORKLOAD --help`` lists each one's options.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

WORKLOADS = ("chat", "broadcast", "idle", "connect", "storm", "search", "wechat")


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in WORKLOADS:
        print(f"usage: kinline bench {{{','.join(WORKLOADS)}}} [options]")
        return 2
    module = importlib.import_module(f"bench.{argv[0]}")
    code: int = module.main(list(argv[1:]))
    return code
