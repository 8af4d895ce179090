"""``kinline bench connect``: authenticated connects per second.

N officers, each with a session token of its own, open one socket each, at most
``--concurrency`` handshakes at once; a connect counts when its ``welcome`` arrived (TCP,
the HTTP upgrade, the session lookup, the user's prisons and duty, the hub subscriptions).
Every round opens all N, then closes them and waits until the server has let them go; the
rate is N over the wall time of the opening alone. ``--server socketio`` runs the same
against the peer (its connect also checks the token against the sessions table).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

from bench import harness
from bench.harness import Bench, WsClient


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinline bench connect", description=__doc__)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between rounds")
    parser.add_argument("--workers", type=int, default=2)
    harness.add_server_argument(parser)
    return parser


async def _round(
    bench: Bench, tokens: list[str], concurrency: int
) -> tuple[list[WsClient], list[float], int, float]:
    """Open one socket per token; (clients, handshake seconds each, failures, wall seconds)."""
    took: list[float] = []
    failures = 0

    async def one(token: str) -> WsClient | None:
        nonlocal failures
        t = time.perf_counter()
        try:
            client = await bench.connect(token, 30.0)
        except (OSError, TimeoutError, harness.HandshakeError):
            failures += 1
            return None
        took.append(time.perf_counter() - t)
        return client

    t0 = time.perf_counter()
    opened = await harness.gather_bounded(
        [lambda tk=tk: one(tk) for tk in tokens],  # type: ignore[misc]
        limit=concurrency,
    )
    wall = time.perf_counter() - t0
    return [c for c in opened if c is not None], took, failures, wall


async def _main(args: argparse.Namespace) -> int:
    n = args.clients
    async with Bench("connect", workers=args.workers, server=args.server) as bench:
        t = time.perf_counter()
        users = await bench.officers(n + 1)
        harness.note(f"seeded {len(users)} officers in {time.perf_counter() - t:.1f} s")
        probe, tokens = users[0][1], [token for _, token in users[1:]]
        await bench.start_server()
        await bench.wait_all_workers(probe)
        harness.close_all(await bench.open_many([probe], 50, label="warm-up"))
        await asyncio.sleep(args.pause)
        rounds: list[dict[str, Any]] = []
        handshakes: list[float] = []
        for index in range(args.rounds):
            meter = harness.CpuMeter(bench.worker_pids)
            meter.start()
            clients, took, failures, wall = await _round(bench, tokens, args.concurrency)
            cpu = meter.stop()
            per_worker = Counter(c.worker for c in clients)
            rounds.append(
                {
                    "round": index + 1,
                    "connected": len(clients),
                    "failures": failures,
                    "seconds": round(wall, 3),
                    "connects_per_s": round(len(clients) / wall, 1),
                    "handshake_ms": harness.percentiles_ms(took),
                    "worker_cpu_ms_per_connect": round(
                        cpu["workers_cores"] * wall / max(1, len(clients)) * 1000, 3
                    ),
                    "sockets_per_worker": {str(k): v for k, v in per_worker.items()},
                    "cpu": cpu,
                }
            )
            handshakes += took
            harness.note(
                f"round {index + 1}: {len(clients)} in {wall:.2f} s"
                f" ({len(clients) / wall:.0f}/s), {failures} failed"
            )
            harness.close_all(clients)
            await asyncio.sleep(args.pause)
        rates = [r["connects_per_s"] for r in rounds]
        result: dict[str, Any] = {
            "workload": "connect",
            "server": args.server,
            "clients": n,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "connects_per_s": {"min": min(rates), "max": max(rates)},
            "failures": sum(r["failures"] for r in rounds),
            "handshake_ms": harness.percentiles_ms(handshakes),
            "rounds": rounds,
            "worker_pids": bench.worker_pids,
        }
        harness.emit(f"connect-{n}", result)
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return harness.run(lambda: _main(args))
