"""``kinline bench broadcast``: one message to N sockets, time until the LAST one has it.

N reader sockets (officers, ``--per-user`` sockets each, spread over the workers by
SO_REUSEPORT) ``watch`` one conversation; one relative sends one message per round. A round's
latency is from the send to the arrival of the message on the last of the N sockets (arrival
= when its bytes reach this process, before any parsing). Readers do not parse JSON: they only
check the frame type prefix, so the client-side cost per delivery is small and is measured
(CPU of this process and time inside the protocol handlers, per round).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import Counter
from typing import Any

from bench import harness
from bench.harness import Bench, WsClient


class Round:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrivals: list[float] = []
        self.done = asyncio.Event()

    def on_reader_frame(self, client: WsClient, payload: bytes, arrived: float) -> None:
        if payload.startswith(b'{"type":"message"'):
            self.arrivals.append(arrived)
            if len(self.arrivals) >= self.expected:
                self.done.set()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinline bench broadcast", description=__doc__)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-user", type=int, default=10, help="reader sockets per officer")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between rounds")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a round may take")
    parser.add_argument("--workers", type=int, default=2)
    harness.add_server_argument(parser)
    return parser


async def _main(args: argparse.Namespace) -> int:
    n = args.sockets
    async with Bench("broadcast", workers=args.workers, server=args.server) as bench:
        t = time.perf_counter()
        officers = await bench.officers(math.ceil(n / args.per_user))
        (pair,) = await bench.pairs(1, officers[0][0])
        seed_s = time.perf_counter() - t
        harness.note(f"seeded {len(officers)} officers in {seed_s:.1f} s")
        await bench.start_server()
        await bench.wait_all_workers(officers[0][1])
        conv = pair.conversation.id
        watch = b'{"type":"watch","conv":%d}' % conv

        async def subscribe(client: WsClient) -> None:
            client.send_text(watch)
            await harness.barrier(client)

        rss_client0 = harness.self_rss_kib()
        t = time.perf_counter()
        tokens = [token for _, token in officers]
        readers = await bench.open_many(tokens, n, after=subscribe, label="readers")
        connect_s = time.perf_counter() - t
        per_worker = Counter(r.worker for r in readers)
        harness.note(f"{n} readers open in {connect_s:.1f} s; per worker {dict(per_worker)}")
        sender = await bench.connect(pair.token)
        rss_server = bench.rss()

        latencies: list[float] = []
        medians: list[float] = []
        client_cpu: list[float] = []
        client_handler: list[float] = []
        incomplete = 0
        for index in range(args.rounds + 1):  # round 0 warms up and is not counted
            current = Round(n)
            for reader in readers:
                reader.on_text = current.on_reader_frame
            busy0 = sum(r.busy_s for r in readers)
            cpu0 = time.process_time()
            sent = time.perf_counter()
            sender.send_text(
                b'{"type":"send","conv":%d,"cid":"r%d","body":"round %d"}' % (conv, index, index)
            )
            try:
                await asyncio.wait_for(current.done.wait(), args.timeout)
            except TimeoutError:
                incomplete += 1
                harness.note(f"round {index}: only {len(current.arrivals)}/{n} within timeout")
            cpu = time.process_time() - cpu0
            busy = sum(r.busy_s for r in readers) - busy0
            if index and current.arrivals:
                arrivals = sorted(current.arrivals)
                latencies.append(arrivals[-1] - sent)
                medians.append(arrivals[len(arrivals) // 2] - sent)
                client_cpu.append(cpu)
                client_handler.append(busy)
            harness.progress(
                f"round {index}/{args.rounds}: all {n} in "
                f"{(max(current.arrivals, default=sent) - sent) * 1000:.1f} ms"
            )
            await asyncio.sleep(args.pause)

        closed = sum(1 for r in readers if r.lost)
        cpu_per_round = sum(client_cpu) / max(1, len(client_cpu))
        handler_per_round = sum(client_handler) / max(1, len(client_handler))
        result: dict[str, Any] = {
            "workload": "broadcast",
            "server": args.server,
            "sockets": n,
            "rounds": args.rounds,
            "workers": args.workers,
            "per_user": args.per_user,
            "sockets_per_worker": {str(k): v for k, v in per_worker.items()},
            "seed_seconds": round(seed_s, 2),
            "connect_seconds": round(connect_s, 2),
            "all_received_ms": harness.percentiles_ms(latencies),
            "median_socket_received_ms": harness.percentiles_ms(medians),
            "incomplete_rounds": incomplete,
            "readers_closed_by_server": closed,
            "client_overhead": {
                "cpu_ms_per_round": round(cpu_per_round * 1000, 2),
                "handler_ms_per_round": round(handler_per_round * 1000, 2),
                "cpu_us_per_delivery": round(cpu_per_round / n * 1e6, 2),
                "note": "the last arrival can be late by up to the client's CPU per round, "
                "since one client thread reads all N sockets (and shares the 2 cores)",
            },
            "server_rss_kib": {str(k): v for k, v in rss_server.items()},
            "client_rss_kib_per_socket": round((harness.self_rss_kib() - rss_client0) / n, 2),
            "worker_pids": bench.worker_pids,
        }
        sender.close()
        harness.close_all(readers)
        harness.emit(f"broadcast-{n}", result)
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return harness.run(lambda: _main(args))
