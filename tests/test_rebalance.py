"""Rebalancing (server/rebalance.py): a process holding much more than its share of sockets
sheds the excess with 1012, and the clients resume elsewhere without losing a message."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from server.config import Settings
from server.rebalance import Rebalancer, RedisLoads, to_shed
from tests.history import check
from tests.realtime import Reader, client
from tests.servers import ServerProcess
from tests.test_cluster import send_all, servers, world  # noqa: F401 (fixtures)
from tests.world import World

# to_shed: (own, every live process's count, tolerance, slack, max_shed) -> sockets to close
SHARES = [
    (0, [0], 0.1, 0, 100, 0),  # alone: nothing to balance against
    (5000, [5000], 0.1, 0, 100, 0),  # alone, however many
    (100, [100, 100], 0.1, 0, 100, 0),  # balanced
    (110, [110, 90], 0.1, 0, 100, 0),  # share 100, at the threshold: not above it
    (112, [112, 88], 0.1, 0, 100, 12),  # above: down to the share
    (112, [112, 88], 0.1, 16, 100, 0),  # the slack absorbs it
    (200, [200, 0], 0.1, 5, 100, 100),  # a restarted worker: half of it
    (200, [200, 0], 0.1, 5, 40, 40),  # at most max_shed per tick
    (5000, [5000, 0], 0.1, 16, 100, 100),
    (0, [5000, 0], 0.1, 16, 100, 0),  # the idle one never sheds
    (2472, [2472, 2528], 0.1, 16, 100, 0),  # near enough
    (300, [300, 0, 0], 0.1, 0, 1000, 200),  # three processes: share 100
    (101, [101, 100, 99], 0.0, 0, 100, 1),  # no tolerance: down to ceil(share)
    (200, [200, 0], 0.1, 0, 0, 0),  # max_shed 0: off
]


@pytest.mark.parametrize(("own", "counts", "tolerance", "slack", "max_shed", "expected"), SHARES)
def test_share_computation(
    own: int, counts: list[int], tolerance: float, slack: int, max_shed: int, expected: int
) -> None:
    assert to_shed(own, counts, tolerance=tolerance, slack=slack, max_shed=max_shed) == expected


class FakeSockets:
    def __init__(self, count: int) -> None:
        self.open_count = count
        self.shed_calls: list[int] = []

    def shed(self, count: int) -> int:
        self.shed_calls.append(count)
        self.open_count -= count
        return count


@pytest.fixture(params=["redis", "cluster"])
async def loads_pair(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[tuple[RedisLoads, RedisLoads, list[float]]]:
    """Two processes' socket counts on one real Redis hash (one server, or a Redis Cluster),
    with a clock the test moves."""
    if request.param == "cluster":
        redis_url: str = request.getfixturevalue("redis_cluster").url
    else:
        redis_url = request.getfixturevalue("redis_url")
    now = [1_000_000.0]
    a, b = (
        RedisLoads(redis_url, key=f"{redis_prefix}sockets", member=m, clock=lambda: now[0])
        for m in ("a", "b")
    )
    yield a, b, now
    await a.leave()
    await a.close()
    await b.close()


async def test_counts_of_a_dead_process_expire(
    loads_pair: tuple[RedisLoads, RedisLoads, list[float]],
) -> None:
    a, b, now = loads_pair
    assert await a.report(7, ttl=3) == [7]
    assert sorted(await b.report(2, ttl=3)) == [2, 7]
    now[0] += 2
    assert sorted(await a.report(8, ttl=3)) == [2, 8]
    now[0] += 2  # b (killed, say) has not reported for 4 s, past its 3 s
    assert await a.report(8, ttl=3) == [8]
    assert sorted(await b.report(1, ttl=3)) == [1, 8]  # b back: counted again
    await b.leave()  # a clean shutdown stops counting at once
    assert await a.report(8, ttl=3) == [8]


async def test_a_tick_sheds_only_what_is_above_the_share(
    loads_pair: tuple[RedisLoads, RedisLoads, list[float]],
) -> None:
    a, b, _ = loads_pair
    settings = Settings(rebalance_tolerance=0.1, rebalance_slack=5, rebalance_max_shed=30)
    busy, idle = FakeSockets(200), FakeSockets(0)
    assert await Rebalancer(busy, a, settings).tick() == 0  # alone so far: nothing to do
    assert await Rebalancer(idle, b, settings).tick() == 0  # below its share: never sheds
    rebalancer = Rebalancer(busy, a, settings)
    assert await rebalancer.tick() == 0  # an excess seen once: confirmed on the next tick
    assert await rebalancer.tick() == 30  # share 100; at most 30 a tick
    assert busy.open_count == 170
    idle.open_count = 30  # where they reconnected
    await Rebalancer(idle, b, settings).tick()
    assert await rebalancer.tick() == 30  # 170 of 200: down towards 100
    idle.open_count = 90
    busy.open_count = 110
    await Rebalancer(idle, b, settings).tick()
    assert await rebalancer.tick() == 0  # share 100, threshold 115: balanced enough
    assert busy.shed_calls == [30, 30]


async def test_a_burst_seen_against_stale_counts_sheds_nothing(
    loads_pair: tuple[RedisLoads, RedisLoads, list[float]],
) -> None:
    """Regression: in the chat benchmark two workers each took 50 sockets within a second;
    one ticked with its peer's count still 0 from before the burst and closed 25 of its 50
    (share 25), 1012 for a balanced load. An excess now counts only when seen twice."""
    a, b, _ = loads_pair
    settings = Settings(rebalance_tolerance=0.1, rebalance_slack=16, rebalance_max_shed=100)
    first, second = FakeSockets(0), FakeSockets(0)
    one, two = Rebalancer(first, a, settings), Rebalancer(second, b, settings)
    assert (await one.tick(), await two.tick()) == (0, 0)
    first.open_count = second.open_count = 100  # the burst; b has not reported it yet
    assert await one.tick() == 0  # sees 100 against b's stale 0
    assert await two.tick() == 0
    assert await one.tick() == 0  # fresh counts: balanced
    assert first.shed_calls == [] and second.shed_calls == []


async def test_a_burst_lasting_many_ticks_sheds_nothing(
    loads_pair: tuple[RedisLoads, RedisLoads, list[float]],
) -> None:
    """Regression: 10,000 sockets connecting over 11 s (the broadcast benchmark), each worker
    seeing its own count against its peer's of a tick before: an excess on every tick, and
    200 sockets of a 5,074 / 4,926 split closed with 1012. Not while the total still grows."""
    a, b, _ = loads_pair
    settings = Settings(rebalance_tolerance=0.1, rebalance_slack=16, rebalance_max_shed=100)
    first, second = FakeSockets(0), FakeSockets(0)
    one, two = Rebalancer(first, a, settings), Rebalancer(second, b, settings)
    for held in range(400, 5001, 400):  # ~400 connects a tick on each worker
        first.open_count = held
        assert await one.tick() == 0  # its own count against the peer's from a tick ago
        second.open_count = held
        assert await two.tick() == 0
    assert first.shed_calls == [] and second.shed_calls == []
    second.open_count = 0  # then one of them restarts: the steady excess is still shed
    assert await two.tick() == 0
    assert await one.tick() == 0  # an excess, but the total moved: not yet
    assert await two.tick() == 0
    assert await one.tick() == 100  # seen again, total steady: shed (max_shed a tick)


def _held(readers: list[Reader]) -> Counter[str | None]:
    return Counter(r.client.worker for r in readers if r.client.connected.is_set())


async def _until(condition: object, seconds: float) -> None:
    """Poll a condition of other processes (no event to wait on), bounded."""
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_restarted_worker_takes_its_share_and_no_message_is_lost(
    world: World,  # noqa: F811
    servers: list[ServerProcess],  # noqa: F811
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """Regression (issue 12, item 7): after a worker was killed, its clients all reconnected to
    the survivor and its replacement took none of them, for as long as it was watched. Now the
    survivor sheds the excess with 1012 until each worker holds about half, and every reader
    still gets every message once and in order."""
    cluster = ServerProcess(
        pg_url,
        redis_url,
        workers=2,
        env={
            "KINLINE_REDIS_PREFIX": redis_prefix,
            "KINLINE_REBALANCE_INTERVAL": "0.3",
            "KINLINE_REBALANCE_SLACK": "2",
        },
    )
    servers.append(cluster)
    await cluster.start()
    readers = [Reader(client(cluster.ws_url, world.token(world.relative))) for _ in range(40)]
    async with Reader(client(cluster.ws_url, world.token(world.officer))) as officer:
        for reader in readers:
            await reader.__aenter__()
        try:
            held = _held(readers)
            if len(held) == 2:  # both workers have some: kill the one with fewer
                victim = min(held, key=lambda w: held[w])
                assert victim is not None
                cluster.kill_worker(int(victim))
                await _until(
                    lambda: (
                        _held(readers).get(victim, 0) == 0 and sum(_held(readers).values()) == 40
                    ),
                    20,
                )
            [(survivor, count)] = _held(readers).most_common(1)
            assert count >= 30, _held(readers)  # the survivor carries (nearly) everyone
            acked: set[int] = set()
            flow = asyncio.create_task(send_all(officer.client, world.conv.id, "m", 30, acked))
            await _until(
                lambda: (
                    sum(_held(readers).values()) == 40
                    and _held(readers)[survivor] <= 26
                    and len(_held(readers)) == 2
                ),
                40,
            )
            async with asyncio.timeout(30):
                await flow
            for reader in readers:
                with contextlib.suppress(TimeoutError):
                    await reader.until_seq(world.conv.id, 30, timeout=20)
                verdict = check(acked, reader.seqs[world.conv.id])
                assert verdict.ok, (reader.client.worker, verdict)
            assert any(r.client.reconnects for r in readers)  # some were moved
        finally:
            for reader in readers:
                await reader.__aexit__(None, None, None)
