"""``kinline bench chat``: persisted send -> ack -> deliver, open loop, sender and reader on
different workers.

P pairs: a relative (sender) and an officer (reader) who ``watch``es the pair's conversation.
A fixed TOTAL rate is spread over the senders on one timeline (message ``k`` is due at
``t0 + k / rate`` and goes to sender ``k % P``); nothing waits for an ack before the next send,
and one socket's sends leave in order. The body carries the send ``perf_counter()``, read back
at the reader (same process, same clock). ``--max`` runs steps of increasing rate until p99
send->deliver passes 200 ms or errors appear.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from bench import harness
from bench.harness import Bench, CpuMeter, Pair, WsClient

P99_LIMIT_MS = 200.0


class _Frame(msgspec.Struct):
    """The fields of a server frame this generator reads (the rest is skipped by msgspec)."""

    type: str
    cid: str | None = None
    code: str | None = None
    body: str | None = None
    conv: int = 0
    seq: int = 0


_decode = msgspec.json.Decoder(_Frame).decode


@dataclass
class Step:
    rate: float
    seconds: float
    sent: dict[str, float] = field(default_factory=dict)  # cid -> perf_counter at send
    lag: list[float] = field(default_factory=list)  # actual - scheduled send time
    ack_lat: list[float] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    errored: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    deliver_lat: list[float] = field(default_factory=list)
    delivered: Counter[str] = field(default_factory=Counter)
    send_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    expected: int = 0  # set once every send is out
    undelivered: set[str] = field(default_factory=set)  # acked, not yet delivered
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if self.expected and len(self.acked) + len(self.errored) >= self.expected:
            self.answered.set()
            if not self.undelivered:
                self.settled.set()

    def result(self, grace: float) -> dict[str, Any]:
        duplicated = sum(n - 1 for n in self.delivered.values() if n > 1)
        lost = sum(1 for cid in self.acked if cid not in self.delivered)
        deliver = harness.percentiles_ms(self.deliver_lat)
        return {
            "target_rate": self.rate,
            "seconds": self.seconds,
            "sent": len(self.sent),
            "achieved_send_rate": round(len(self.sent) / max(1e-9, self.send_seconds), 1),
            "acked": len(self.acked),
            "acked_rate": round(len(self.acked) / max(1e-9, self.send_seconds), 1),
            "errors": dict(self.errors),
            "unanswered": len(self.sent) - len(self.acked) - len(self.errored),
            "send_to_ack_ms": harness.percentiles_ms(self.ack_lat),
            "send_to_deliver_ms": deliver,
            "lost": lost,
            "lost_grace_s": grace,
            "duplicated": duplicated,
            "schedule_lag_ms": harness.percentiles_ms(self.lag),
            "cpu": self.cpu,
        }


class Chat:
    def __init__(self, bench: Bench, pairs: list[Pair], body_chars: int) -> None:
        self.bench = bench
        self.pairs = pairs
        self.filler = "x" * max(0, body_chars - 20)
        self.steps: list[Step] = []
        self.senders: list[WsClient] = []
        self.readers: list[WsClient] = []
        self.out_of_order = 0  # a message whose seq is not last + 1 on its reader
        self.last_seq: dict[int, int] = {}

    # handlers (hot: called for every frame)

    def on_sender_frame(self, client: WsClient, payload: bytes, arrived: float) -> None:
        frame = _decode(payload)
        if frame.cid is None:
            return
        step = self.steps[int(frame.cid.partition(".")[0])]
        if frame.type == "ack":
            sent = step.sent.get(frame.cid)
            if sent is not None and frame.cid not in step.acked:
                step.ack_lat.append(arrived - sent)
                step.acked.add(frame.cid)
                if frame.cid not in step.delivered:
                    step.undelivered.add(frame.cid)
        elif frame.type == "error":
            step.errors[frame.code or "?"] += 1
            step.errored.add(frame.cid)
        if step.expected:
            step.check()

    def on_reader_frame(self, client: WsClient, payload: bytes, arrived: float) -> None:
        if not payload.startswith(b'{"type":"message"'):
            return
        frame = _decode(payload)
        if frame.cid is None or frame.body is None:
            return
        step = self.steps[int(frame.cid.partition(".")[0])]
        step.delivered[frame.cid] += 1
        if step.delivered[frame.cid] == 1:
            step.deliver_lat.append(arrived - float(frame.body.partition(" ")[0]))
            if step.undelivered:
                step.undelivered.discard(frame.cid)
                if step.expected and not step.undelivered:
                    step.check()
        last = self.last_seq.get(frame.conv)
        if last is not None and frame.seq != last + 1:
            self.out_of_order += 1
        self.last_seq[frame.conv] = max(frame.seq, last or 0)

    # setup

    async def connect(self, officers: list[tuple[Any, str]]) -> None:
        bench = self.bench

        async def one(index: int) -> tuple[WsClient, WsClient]:
            pair = self.pairs[index]
            _, officer_token = officers[index]
            reader = await bench.connect(officer_token)
            reader.send_text(b'{"type":"watch","conv":%d}' % pair.conversation.id)
            await harness.barrier(reader)
            sender = await bench.connect_on_worker(pair.token, avoid=reader.worker)
            reader.on_text = self.on_reader_frame
            sender.on_text = self.on_sender_frame
            harness.progress(f"connected pair {index + 1}/{len(self.pairs)}")
            return sender, reader

        made = await harness.gather_bounded(
            [lambda i=i: one(i) for i in range(len(self.pairs))],  # type: ignore[misc]
            limit=16,
        )
        self.senders = [s for s, _ in made]
        self.readers = [r for _, r in made]
        workers = Counter(s.worker for s in self.senders)
        harness.note(f"{len(made)} pairs connected; senders per worker {dict(workers)}")

    # one step

    async def step(self, rate: float, seconds: float, grace: float, label: str = "") -> Step:
        step = Step(rate, seconds)
        index = len(self.steps)
        self.steps.append(step)
        meter = CpuMeter(self.bench.worker_pids)
        meter.start()
        senders = self.senders
        convs = [p.conversation.id for p in self.pairs]
        count = len(senders)
        total = int(rate * seconds)
        filler = self.filler
        sent = step.sent
        lag = step.lag
        perf = time.perf_counter
        t0 = perf() + 0.01
        k = 0
        while k < total:
            now = perf()
            due = min(total, int((now - t0) * rate) + 1)
            while k < due:
                who = k % count
                cid = f"{index}.{k}"
                at = perf()
                senders[who].send_text(
                    f'{{"type":"send","conv":{convs[who]},"cid":"{cid}",'
                    f'"body":"{at!r} {filler}"}}'.encode()
                )
                sent[cid] = at
                lag.append(at - (t0 + k / rate))
                k += 1
            harness.progress(f"{label}rate {rate:.0f}/s: sent {k}/{total}")
            wait = t0 + k / rate - perf()
            await asyncio.sleep(wait if wait > 0 else 0)
        step.send_seconds = perf() - t0
        # every send answered (ack or error), then every ack delivered, within bounds
        step.expected = total
        step.check()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(step.answered.wait(), 10.0)
        step.cpu = meter.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(step.settled.wait(), grace)
        return step


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinline bench chat", description=__doc__)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1000.0, help="total messages per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max", action="store_true", help="find the rate where p99 > 200 ms")
    parser.add_argument("--step-seconds", type=float, default=5.0, help="--max: step length")
    parser.add_argument("--start", type=float, default=500.0, help="--max: first rate")
    parser.add_argument("--increment", type=float, default=500.0, help="--max: rate increment")
    parser.add_argument("--body-chars", type=int, default=80)
    parser.add_argument("--grace", type=float, default=3.0, help="seconds to wait for deliveries")
    parser.add_argument("--workers", type=int, default=2)
    harness.add_server_argument(parser)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at 200 msg/s first")
    parser.add_argument(
        "--no-keywords",
        action="store_true",
        help="run with empty keyword lists (by default the demo's lists are stored, so every"
        " message is matched in the send path as in a bureau that keeps lists)",
    )
    return parser


def _passes(result: dict[str, Any]) -> tuple[bool, str]:
    p99 = result["send_to_deliver_ms"]["p99"]
    if result["errors"]:
        return False, f"errors {result['errors']}"
    if result["unanswered"] or result["lost"]:
        return False, f"unanswered {result['unanswered']}, lost {result['lost']}"
    if p99 is None or p99 > P99_LIMIT_MS:
        return False, f"p99 send->deliver {p99} ms"
    if result["achieved_send_rate"] < 0.95 * result["target_rate"]:
        return False, "load generator could not keep the rate"
    return True, "ok"


async def _main(args: argparse.Namespace) -> int:
    async with Bench("chat", workers=args.workers, server=args.server) as bench:
        t = time.perf_counter()
        officers = await bench.officers(args.pairs)
        pairs = await bench.pairs(args.pairs, officers[0][0])
        if not args.no_keywords:
            await bench.keyword_lists()
        seed_s = time.perf_counter() - t
        harness.note(f"seeded {args.pairs} pairs in {seed_s:.1f} s")
        await bench.start_server()
        await bench.wait_all_workers(officers[0][1])
        chat = Chat(bench, pairs, args.body_chars)
        await chat.connect(officers)
        if args.warmup > 0:
            await chat.step(200.0, args.warmup, args.grace, "warm-up ")
        result: dict[str, Any] = {
            "workload": "chat",
            "server": args.server,
            "pairs": args.pairs,
            "workers": args.workers,
            "body_chars": args.body_chars,
            "keyword_lists": not args.no_keywords and args.server == "kinline",
            "seed_seconds": round(seed_s, 2),
        }
        if not args.max:
            step = await chat.step(args.rate, args.seconds, args.grace)
            result.update(step.result(args.grace))
        else:
            table: list[dict[str, Any]] = []
            best: float | None = None
            low, high = 0.0, 0.0
            rate = args.start
            while True:
                step_result = (await chat.step(rate, args.step_seconds, args.grace)).result(
                    args.grace
                )
                ok, why = _passes(step_result)
                step_result["pass"], step_result["why"] = ok, why
                table.append(step_result)
                harness.note(
                    f"rate {rate:.0f}: achieved {step_result['achieved_send_rate']}, p99 deliver"
                    f" {step_result['send_to_deliver_ms']['p99']} ms, errors"
                    f" {step_result['errors']} -> {'pass' if ok else 'FAIL: ' + why}"
                )
                if ok:
                    best = rate if best is None else max(best, rate)
                    low = rate
                else:
                    high = rate
                if high == 0.0:
                    rate += args.increment
                elif high - low > args.increment / 4 + 1:
                    rate = (low + high) / 2
                else:
                    break
                await asyncio.sleep(1.0)  # let queues drain between steps
            result["max_rate_p99_le_200ms"] = best
            result["steps"] = table
        result["out_of_order"] = chat.out_of_order
        result["worker_pids"] = bench.worker_pids
        for client in chat.senders + chat.readers:
            client.close()
        harness.emit("chat-max" if args.max else "chat", result)
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return harness.run(lambda: _main(args))
