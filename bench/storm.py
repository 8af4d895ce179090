"""``kinline bench storm``: a worker killed under N relatives' sockets, until all resumed.

N relatives, each verified for an inmate of its own with an open conversation, connect and
``hello`` with a cursor for it; a connection counts once its ``subscribed`` arrived. Then one
worker is killed with SIGKILL (the supervisor starts another). Every dropped client does what
the web client does (web/lib/socket.js): it waits a jittered back-off (uniform in
[d/2, d], d = ``--backoff`` ms doubling per failed attempt up to 5 s), reconnects, says
``hello`` from where it was, and counts as resumed at its ``subscribed``. Reported: how many
dropped, the time from the kill until the last one resumed, and the spread of resume times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter
from typing import Any

from bench import harness
from bench.harness import Bench, HandshakeError, Pair, WsClient

CAP_S = 5.0  # web/lib/socket.js backoffCap


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinline bench storm", description=__doc__)
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--backoff", type=float, default=500.0, help="first back-off, ms")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to resume all")
    parser.add_argument("--workers", type=int, default=2)
    return parser


class Client:
    """One relative's socket, reconnecting after a drop like the web client."""

    def __init__(self, bench: Bench, pair: Pair, backoff_s: float) -> None:
        self.bench, self.pair, self.backoff_s = bench, pair, backoff_s
        self.socket: WsClient | None = None
        self.dropped_at: float | None = None
        self.resumed_at: float | None = None
        self.attempts = 0

    async def open(self) -> None:
        conv = self.pair.conversation.id
        client = await self.bench.connect(self.pair.token, 30.0)
        client.send_text(b'{"type":"hello","resume":{"%d":0}}' % conv)
        await client.expect(lambda f: f.startswith(b'{"type":"subscribed"'), 30.0)
        self.socket = client

    async def live(self) -> None:
        """Until the socket drops; then back off and reconnect until subscribed again."""
        assert self.socket is not None
        with contextlib.suppress(HandshakeError):  # raised when the socket closes
            await self.socket.expect(lambda _: False, 1e9)
        self.dropped_at = time.perf_counter()
        while True:
            ceiling = min(CAP_S, self.backoff_s * 2**self.attempts)
            await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
            self.attempts += 1
            try:
                await self.open()
            except (OSError, TimeoutError, HandshakeError):
                continue
            self.resumed_at = time.perf_counter()
            return


async def _main(args: argparse.Namespace) -> int:
    n = args.sockets
    async with Bench("storm", workers=args.workers) as bench:
        t = time.perf_counter()
        (decider,) = await bench.officers(1)
        pairs = await bench.pairs(n, decider[0])
        harness.note(f"seeded {n} relatives in {time.perf_counter() - t:.1f} s")
        await bench.start_server()
        await bench.wait_all_workers(pairs[0].token)
        clients = [Client(bench, pair, args.backoff / 1000) for pair in pairs]
        await harness.gather_bounded([c.open for c in clients], limit=64)
        per_worker = Counter(c.socket.worker for c in clients if c.socket is not None)
        victim = max(per_worker, key=lambda pid: per_worker[pid])
        harness.note(f"{n} subscribed, {dict(per_worker)}; killing worker {victim}")
        lives = [asyncio.create_task(c.live()) for c in clients]
        killed = time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        dropped = per_worker[victim]
        deadline = killed + args.timeout
        while time.perf_counter() < deadline:
            gone = [c for c in clients if c.dropped_at is not None]
            back = [c for c in gone if c.resumed_at is not None]
            harness.progress(f"dropped {len(gone)}, resumed {len(back)}")
            if len(gone) >= dropped and len(back) == len(gone):
                break
            await asyncio.sleep(0.05)
        gone = [c for c in clients if c.dropped_at is not None]
        back = [c for c in gone if c.resumed_at is not None]
        resumed = [c.resumed_at - killed for c in back if c.resumed_at is not None]
        for task in lives:
            task.cancel()
        harness.close_all(c.socket for c in clients if c.socket is not None)
        result: dict[str, Any] = {
            "workload": "storm",
            "sockets": n,
            "workers": args.workers,
            "killed_worker_sockets": dropped,
            "dropped": len(gone),
            "resumed": len(back),
            "all_resumed_s": round(max(resumed), 3) if len(back) == len(gone) else None,
            "resume_ms": harness.percentiles_ms(resumed),
            "retried": sum(1 for c in back if c.attempts > 1),
            "backoff_ms": args.backoff,
        }
        harness.emit(f"storm-{n}", result)
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return harness.run(lambda: _main(args))
