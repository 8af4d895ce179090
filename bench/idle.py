"""``kinline bench idle``: server memory per idle authenticated socket.

N sockets (one officer per socket by default, so each socket also costs the server its user
topic and Redis subscription, as in production) open, get their ``welcome`` and stay idle
(pings are answered). The workers' VmRSS summed is read before (after a small warm-up) and
after, once settled; the difference over N is the cost of one idle socket.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import Counter
from typing import Any

from bench import harness
from bench.harness import Bench


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinline bench idle", description=__doc__)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--per-user", type=int, default=1, help="sockets per user")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before reading")
    parser.add_argument("--warmup", type=int, default=20, help="sockets opened and closed first")
    parser.add_argument("--workers", type=int, default=2)
    harness.add_server_argument(parser)
    return parser


async def _main(args: argparse.Namespace) -> int:
    n = args.sockets
    async with Bench("idle", workers=args.workers, server=args.server) as bench:
        t = time.perf_counter()
        users = await bench.officers(math.ceil(n / args.per_user) + 1)
        seed_s = time.perf_counter() - t
        harness.note(f"seeded {len(users)} users in {seed_s:.1f} s")
        probe, tokens = users[0][1], [token for _, token in users[1:]]
        await bench.start_server()
        await bench.wait_all_workers(probe)
        warm = await bench.open_many([probe], args.warmup, label="warm-up")
        harness.close_all(warm)
        await asyncio.sleep(2.0)
        before = bench.rss()
        client_before = harness.self_rss_kib()
        t = time.perf_counter()
        clients = await bench.open_many(tokens, n, label="idle")
        connect_s = time.perf_counter() - t
        await asyncio.sleep(args.settle)
        after = bench.rss()
        client_after = harness.self_rss_kib()
        alive = sum(1 for c in clients if not c.lost)
        per_worker = Counter(c.worker for c in clients)
        harness.close_all(clients)
        await asyncio.sleep(args.settle)
        closed = bench.rss()
        delta = sum(after.values()) - sum(before.values())
        result: dict[str, Any] = {
            "workload": "idle",
            "server": args.server,
            "sockets": n,
            "per_user": args.per_user,
            "workers": args.workers,
            "sockets_per_worker": {str(k): v for k, v in per_worker.items()},
            "alive_after_settle": alive,
            "seed_seconds": round(seed_s, 2),
            "connect_seconds": round(connect_s, 2),
            "rss_before_kib": {str(k): v for k, v in before.items()},
            "rss_after_kib": {str(k): v for k, v in after.items()},
            "rss_after_close_kib": {str(k): v for k, v in closed.items()},
            "rss_delta_kib": delta,
            "kib_per_idle_socket": round(delta / n, 2),
            "per_worker_kib_per_socket": {
                str(pid): round((after[pid] - before[pid]) / max(1, per_worker.get(pid, 0)), 2)
                for pid in after
            },
            "retained_after_close_kib": sum(closed.values()) - sum(before.values()),
            "client_kib_per_socket": round((client_after - client_before) / n, 2),
            "worker_pids": bench.worker_pids,
        }
        harness.emit(f"idle-{n}", result)
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return harness.run(lambda: _main(args))
