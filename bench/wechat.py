"""``kinline bench wechat``: an officer's answer to a relative who is not on the page, from the
officer's send to the WeChat platform receiving the customer-service call; and the outbox while
the platform fails.

Setup: ``kinline serve --workers 2`` with the WeChat channel on and ``KINLINE_WECHAT_API``
pointing at a fake platform served by this process on loopback (``/cgi-bin/token`` and
``/cgi-bin/message/custom/send``, answered as the platform answers). R relatives, each verified
for its own inmate and bound to an OpenID whose 48-hour window is open (it "wrote from WeChat"
just before), none connected to the web app: every answer goes out as a customer-service text.

Two phases, one open-loop timeline each (answer ``k`` due at ``t0 + k / rate``, to relative
``k % R``, by one of the officers over ``POST /api/v1/conversations/{id}/messages``):

1. **steady** (``--seconds``): the platform answers every call. Latency = ``perf_counter()``
   just before the officer's POST -> ``perf_counter()`` when the fake platform got the
   customer-service call carrying that answer (same process, same clock). The officer's own
   send -> 201 is reported too.
2. **outage** (``--fail-seconds``, then ``--recover-seconds`` more sending): for the first
   part every customer-service call is answered ``{"errcode": -1, "errmsg": "system error"}``
   (the platform busy); then it recovers. Reported: calls refused and accepted, per answer the
   number of accepted calls (exactly one for every answer: ``sent_exactly_once``), the outbox's
   own record (``attempts`` per row, ``retries`` = attempts beyond the first, rows by state),
   and the time from recovery to the last delivery.

After each phase it waits (at most ``--settle`` seconds) until no outbox row is pending.
``KINLINE_OUTBOX_BACKOFF`` / ``_POLL`` / ``_MAX_ATTEMPTS`` are the server's defaults unless
``--backoff`` etc. are given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bench import harness
from bench.harness import Bench, CpuMeter, Pair
from storage import wechat
from storage.postgres import PostgresDatabase
from storage.sql import utcnow

APPID = "wxbench0000000000"
SECRET = "bench-secret"
TOKEN = "bench-token"
CUSTOM = "/cgi-bin/message/custom/send"
IDLE_GRACE = 5.0  # seconds with nothing pending before the missing answers count as lost
SEP = "\uff1a"  # the relay sends the officer's name, a full-width colon, the body


@dataclass
class FakePlatform:
    """The platform's token and customer-service endpoints; ``failing`` answers "system
    error" to every customer-service call. Each accepted call is recorded with its arrival."""

    failing: bool = False
    tokens: set[str] = field(default_factory=set)
    accepted: dict[str, list[float]] = field(default_factory=dict)  # tag -> arrivals
    refused: Counter[str] = field(default_factory=Counter)  # tag -> calls answered -1
    token_calls: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        if request.path == "/cgi-bin/token":
            self.token_calls += 1
            token = secrets.token_hex(16)
            self.tokens.add(token)
            return web.json_response({"access_token": token, "expires_in": 7200})
        if request.query.get("access_token") not in self.tokens:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if request.path != CUSTOM:
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        payload = json.loads(await request.read())
        tag = payload["text"]["content"].partition(SEP)[2].partition(" ")[0]
        if self.failing:
            self.refused[tag] += 1
            return web.json_response({"errcode": -1, "errmsg": "system error"})
        self.accepted.setdefault(tag, []).append(arrived)
        self.changed.set()
        return web.json_response({"errcode": 0, "errmsg": "ok"})


async def serve_platform(fake: FakePlatform) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, harness.HOST, 0)
    await site.start()
    return runner, f"http://{harness.HOST}:{runner.addresses[0][1]}"


@dataclass
class Phase:
    name: str
    sent: dict[str, float] = field(default_factory=dict)  # tag -> perf_counter before POST
    post_lat: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    message_ids: list[int] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    send_seconds: float = 0.0


class Answers:
    def __init__(
        self,
        bench: Bench,
        officers: list[tuple[Any, str]],
        pairs: list[Pair],
        fake: FakePlatform,
    ) -> None:
        self.bench = bench
        self.officers = officers
        self.pairs = pairs
        self.fake = fake
        self.http: aiohttp.ClientSession | None = None
        self.filler = "您好，您的问题已收到，我们已转告相关部门，请耐心等待答复。"

    async def _answer(self, phase: Phase, k: int) -> None:
        assert self.http is not None
        pair = self.pairs[k % len(self.pairs)]
        _, token = self.officers[k % len(self.officers)]
        tag = f"{phase.name}-{k}"
        url = f"http://{harness.HOST}:{self.bench.port}/api/v1/conversations/"
        url += f"{pair.conversation.id}/messages"
        start = time.perf_counter()
        phase.sent[tag] = start
        try:
            async with self.http.post(
                url,
                json={"body": f"{tag} {self.filler}", "cid": tag},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                answer = await response.json()
                if response.status != 201:
                    phase.errors[str(answer.get("error", {}).get("code", response.status))] += 1
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            phase.errors[type(exc).__name__] += 1
            return
        phase.post_lat.append(time.perf_counter() - start)
        phase.message_ids.append(int(answer["id"]))

    async def run(self, phase: Phase, rate: float, seconds: float, start_at: int = 0) -> None:
        """Open loop: answer ``k`` due at ``t0 + k / rate`` (nothing waits for the last)."""
        count = int(rate * seconds)
        tasks: list[asyncio.Task[None]] = []
        t0 = time.perf_counter()
        for k in range(count):
            due = t0 + k / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            phase.lag.append(time.perf_counter() - due)
            tasks.append(asyncio.create_task(self._answer(phase, start_at + k)))
            harness.progress(f"{phase.name}: {k + 1}/{count} answers sent")
        phase.send_seconds = time.perf_counter() - t0
        await asyncio.gather(*tasks)

    async def settle(self, phase: Phase, timeout: float) -> bool:
        """Wait until every answer of the phase reached the platform and no row is pending."""
        store = self.bench.store
        assert store is not None
        deadline = time.monotonic() + timeout
        idle_since: float | None = None  # nothing pending, yet not everything delivered
        while time.monotonic() < deadline:
            pending = await outbox_pending(store)
            delivered = sum(1 for tag in phase.sent if tag in self.fake.accepted)
            harness.progress(
                f"{phase.name}: {delivered}/{len(phase.sent)} at the platform, {pending} pending"
            )
            if pending == 0 and delivered >= len(phase.message_ids):
                return True
            if pending:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_GRACE:
                return False  # settled otherwise (skipped or failed): the result says how
            self.fake.changed.clear()
            try:
                async with asyncio.timeout(0.5):
                    await self.fake.changed.wait()
            except TimeoutError:
                pass
        return False


async def outbox_pending(store: PostgresDatabase) -> int:
    async with store.read() as sql:
        count: int = await sql.fetchval("SELECT count(*) FROM outbox WHERE state = 'pending'")
    return count


async def outbox_record(store: PostgresDatabase, message_ids: list[int]) -> dict[str, Any]:
    """What the outbox itself says about these answers' rows."""
    if not message_ids:
        return {"rows": 0}
    async with store.read() as sql:
        rows = await sql.fetch(
            "SELECT o.state, o.channel, o.detail, o.attempts,"
            " (SELECT count(*) FROM outbox_attempts a WHERE a.outbox_id = o.id) AS recorded,"
            " (SELECT count(*) FROM outbox_attempts a WHERE a.outbox_id = o.id AND a.ok)"
            "  AS succeeded"
            " FROM outbox o WHERE o.message_id = ANY($1::bigint[])",
            message_ids,
        )
    attempts = Counter(int(r["attempts"]) for r in rows)
    return {
        "rows": len(rows),
        "by_state": dict(Counter(f"{r['state']}/{r['channel'] or r['detail']}" for r in rows)),
        "attempts_histogram": {str(k): attempts[k] for k in sorted(attempts)},
        "retries": sum(int(r["attempts"]) - 1 for r in rows),
        "attempts_recorded": sum(int(r["recorded"]) for r in rows),
        "rows_with_one_success": sum(1 for r in rows if int(r["succeeded"]) == 1),
        "rows_with_more_than_one_success": sum(1 for r in rows if int(r["succeeded"]) > 1),
    }


def latency(phase: Phase, fake: FakePlatform) -> list[float]:
    return [
        fake.accepted[tag][0] - sent for tag, sent in phase.sent.items() if tag in fake.accepted
    ]


def delivery(phase: Phase, fake: FakePlatform) -> dict[str, Any]:
    """Per answer: how many calls the platform accepted (exactly one each) and refused."""
    posted = len(phase.message_ids)
    tags = list(phase.sent)
    once = sum(1 for tag in tags if len(fake.accepted.get(tag, ())) == 1)
    return {
        "answers_posted": posted,
        "post_errors": dict(phase.errors),
        "delivered": sum(1 for tag in tags if tag in fake.accepted),
        "never_delivered": sum(1 for tag in tags if tag not in fake.accepted),
        "delivered_more_than_once": sum(1 for tag in tags if len(fake.accepted.get(tag, ())) > 1),
        "sent_exactly_once": once == posted and posted == len(tags),
        "calls_refused_by_platform": sum(fake.refused[tag] for tag in tags),
        "answers_refused_at_least_once": sum(1 for tag in tags if fake.refused[tag]),
    }


async def bind_all(store: PostgresDatabase, pairs: list[Pair]) -> None:
    """Each relative bound to an OpenID, its 48-hour window open (it wrote from WeChat)."""
    now = utcnow()

    async def one(pair: Pair) -> None:
        await wechat.bind(store, pair.relative.id, f"o-bench-{pair.relative.id}", now)
        await wechat.heard_from(store, pair.relative.id, now)

    await harness.gather_bounded([lambda p=p: one(p) for p in pairs])  # type: ignore[misc]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    fake = FakePlatform()
    runner, api = await serve_platform(fake)
    env = {
        "KINLINE_WECHAT_APPID": APPID,
        "KINLINE_WECHAT_SECRET": SECRET,
        "KINLINE_WECHAT_TOKEN": TOKEN,
        "KINLINE_WECHAT_API": api,
        "KINLINE_WECHAT_TEMPLATE_ID": "TPL-bench",
        "KINLINE_PUBLIC_URL": "https://kinline.bench.invalid",
        # its own Redis keys: relatives "connected" to another server on the same Redis (same
        # user ids in another database) would otherwise be skipped as seen live
        "KINLINE_REDIS_PREFIX": f"kinline-bench-{secrets.token_hex(4)}:",
    }
    for option, name in (
        ("backoff", "KINLINE_OUTBOX_BACKOFF"),
        ("poll", "KINLINE_OUTBOX_POLL"),
        ("max_attempts", "KINLINE_OUTBOX_MAX_ATTEMPTS"),
    ):
        if getattr(args, option) is not None:
            env[name] = str(getattr(args, option))
    try:
        async with Bench("wechat", workers=args.workers, env=env) as bench:
            assert bench.store is not None
            officers = await bench.officers(args.officers)
            pairs = await bench.pairs(args.relatives, officers[0][0])
            await bind_all(bench.store, pairs)
            await bench.start_server()
            answers = Answers(bench, officers, pairs, fake)
            timeout = aiohttp.ClientTimeout(total=30)
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                answers.http = http
                warm = Phase("warm")
                await answers.run(warm, min(args.rate, 10.0), 1.0)
                warm_settled = await answers.settle(warm, args.settle)

                steady = Phase("steady")
                meter = CpuMeter(bench.worker_pids)
                meter.start()
                await answers.run(steady, args.rate, args.seconds)
                steady_settled = await answers.settle(steady, args.settle)
                steady_cpu = meter.stop()
                harness.note(f"steady: {len(steady.sent)} answers, settled={steady_settled}")

                outage = Phase("outage")
                fake.failing = True
                failed_at = time.perf_counter()
                recover = asyncio.get_running_loop().call_later(
                    args.fail_seconds, setattr, fake, "failing", False
                )
                try:
                    await answers.run(outage, args.rate, args.fail_seconds + args.recover_seconds)
                    outage_settled = await answers.settle(outage, args.settle)
                finally:
                    recover.cancel()
                    fake.failing = False
                recovered_at = failed_at + args.fail_seconds
                last = max(
                    (fake.accepted[t][0] for t in outage.sent if t in fake.accepted),
                    default=recovered_at,
                )
                harness.note(f"outage: {len(outage.sent)} answers, settled={outage_settled}")
                sent_during = [t for t, at in outage.sent.items() if at < recovered_at]
                during = Phase("during", sent={t: outage.sent[t] for t in sent_during})
                return {
                    "workload": "wechat",
                    "workers": args.workers,
                    "relatives": args.relatives,
                    "officers": args.officers,
                    "rate": args.rate,
                    "server_env": {k: v for k, v in env.items() if k.startswith("KINLINE_OUTBOX")},
                    "warm": {
                        "settled": warm_settled,
                        **delivery(warm, fake),
                        "outbox": await outbox_record(bench.store, warm.message_ids),
                    },
                    "steady": {
                        "seconds": args.seconds,
                        "achieved_rate": round(
                            len(steady.sent) / max(1e-9, steady.send_seconds), 1
                        ),
                        "settled": steady_settled,
                        "send_to_custom_send_ms": harness.percentiles_ms(latency(steady, fake)),
                        "officer_post_ms": harness.percentiles_ms(steady.post_lat),
                        "schedule_lag_ms": harness.percentiles_ms(steady.lag),
                        **delivery(steady, fake),
                        "outbox": await outbox_record(bench.store, steady.message_ids),
                        "cpu": steady_cpu,
                    },
                    "outage": {
                        "fail_seconds": args.fail_seconds,
                        "recover_seconds": args.recover_seconds,
                        "settled": outage_settled,
                        **delivery(outage, fake),
                        "outbox": await outbox_record(bench.store, outage.message_ids),
                        "answers_sent_while_failing": len(sent_during),
                        "send_to_custom_send_ms_sent_while_failing": harness.percentiles_ms(
                            latency(during, fake)
                        ),
                        "recovery_to_last_delivery_ms": round((last - recovered_at) * 1000, 1),
                    },
                    "token_fetches": fake.token_calls,
                }
    finally:
        await runner.cleanup()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="kinline bench wechat",
        description="an officer's answer -> the WeChat platform's customer-service call"
        " (p50/p99), and the outbox while the platform fails; see bench/wechat.py",
    )
    parser.add_argument("--relatives", type=int, default=50, help="bound relatives answered")
    parser.add_argument("--officers", type=int, default=5, help="officers answering")
    parser.add_argument("--rate", type=float, default=20.0, help="answers per second, in all")
    parser.add_argument("--seconds", type=float, default=30.0, help="the steady phase")
    parser.add_argument(
        "--fail-seconds", type=float, default=10.0, help="the platform refuses every call"
    )
    parser.add_argument(
        "--recover-seconds", type=float, default=5.0, help="sending after it recovers"
    )
    parser.add_argument("--settle", type=float, default=120.0, help="max wait for the outbox")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backoff", type=float, default=None, help="KINLINE_OUTBOX_BACKOFF")
    parser.add_argument("--poll", type=float, default=None, help="KINLINE_OUTBOX_POLL")
    parser.add_argument(
        "--max-attempts", type=int, default=None, help="KINLINE_OUTBOX_MAX_ATTEMPTS"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)

    async def go() -> int:
        result = await measure(args)
        harness.emit("wechat", result)
        ok = all(result[phase]["sent_exactly_once"] for phase in ("warm", "steady", "outage"))
        return 0 if ok else 1

    return harness.run(go)
