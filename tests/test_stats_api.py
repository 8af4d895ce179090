"""GET /stats and GET /stats/bureau over real HTTP to an in-process server on PostgreSQL and
Redis: the scripted scenario of tests/test_figures.py read back exactly, the date range
rules, and (end to end) the figures of a conversation held over real sockets, computed here
from the acks' timestamps."""

from __future__ import annotations

import json
import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import pytest

from domain.records import User
from server import sessions
from server.api import stats
from server.api.stats import BureauReply, StatsReply
from server.config import Settings
from storage import accounts, desk
from storage.postgres import PostgresDatabase
from storage.sql import utcnow
from tests.realtime import Reader, client
from tests.servers import free_port, inprocess
from tests.test_figures import (
    DAY1,
    DAY2,
    EXPECTED_BUREAU,
    NOW,
    SHANGHAI,
    Scenario,
    build,
    expected_prisons,
)
from tests.world import seed, seed_staff


@dataclass
class Api:
    url: str
    ws: str
    http: aiohttp.ClientSession
    store: PostgresDatabase
    tokens: dict[int, str]

    async def get(self, path: str, who: User | None) -> tuple[int, Any]:
        headers = {}
        if who is not None:
            if who.id not in self.tokens:
                self.tokens[who.id] = await sessions.issue(self.store, who, days=1)
            headers["Authorization"] = f"Bearer {self.tokens[who.id]}"
        async with self.http.get(self.url + path, headers=headers) as response:
            return response.status, await response.json()


class Clock:
    """The moment the server computes figures at (``server.api.stats.clock``)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    pinned = Clock(NOW)
    monkeypatch.setattr(stats, "clock", pinned)
    return pinned


@pytest.fixture
async def api(
    pg_store: PostgresDatabase, pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Api]:
    settings = Settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        port=free_port(),
        secret="stats",
        timezone="Asia/Shanghai",
        send_rate=500,
        send_burst=500,
    )
    async with inprocess(settings, pg_store) as served, aiohttp.ClientSession() as http:
        yield Api(served.http_url + "/api/v1", served.ws_url, http, pg_store, {})


@dataclass
class People:
    supervisor: User  # of Gaoming
    supervisor_s: User  # of Sanshui
    both: User  # supervisor of both prisons
    admin: User


async def people(api: Api, sc: Scenario) -> People:
    store = api.store
    return People(
        await accounts.add_user(store, "supervisor", "sup.wang", "Wang Fang", "x", [sc.gaoming.id]),
        await accounts.add_user(store, "supervisor", "sup.sun", "Sun Li", "x", [sc.sanshui.id]),
        await accounts.add_user(
            store, "supervisor", "sup.he", "He Ming", "x", [sc.gaoming.id, sc.sanshui.id]
        ),
        await accounts.add_user(store, "admin", "admin.he", "He Ping", "x"),
    )


def wire(value: object) -> Any:
    """What a value looks like once sent as JSON and parsed."""
    return json.loads(msgspec.json.encode(value))


RANGE = f"from={DAY1}&to={DAY2}"


async def test_each_reader_gets_exactly_the_scripted_figures_of_its_prisons(
    api: Api, clock: Clock
) -> None:
    sc = await build(api.store)
    p = await people(api, sc)
    gm, ss = expected_prisons(sc)
    cases: list[tuple[User, str, list[Any]]] = [
        (p.admin, "", [gm, ss]),
        (p.admin, f"&prison={sc.sanshui.id}", [ss]),
        (p.both, "", [gm, ss]),
        (p.supervisor, "", [gm]),
        (p.supervisor_s, "", [ss]),
        (sc.officer, "", [gm]),
        (sc.officer, f"&prison={sc.gaoming.id}", [gm]),
        (sc.officer_s, "", [ss]),
    ]
    for who, extra, rows in cases:
        status, got = await api.get(f"/stats?{RANGE}{extra}", who)
        assert status == 200, (who.login, got)
        assert got == wire(StatsReply(DAY1, DAY2, "Asia/Shanghai", NOW, rows)), who.login


async def test_the_default_range_is_the_last_seven_local_days(api: Api, clock: Clock) -> None:
    sc = await build(api.store)
    gm, _ = expected_prisons(sc)
    # 2026-03-10 20:00 in Shanghai: the last seven local days are 03-04 .. 03-10
    status, got = await api.get("/stats", sc.officer)
    assert status == 200
    assert (got["from"], got["to"]) == ("2026-03-04", "2026-03-10")
    [prison] = got["prisons"]
    assert [d["day"] for d in prison["days"]] == [f"2026-03-{d:02}" for d in range(4, 11)]
    assert prison["days"][-2:] == wire(gm.days)
    assert all(d["cycles"] == 0 and d["messages"] == 0 for d in prison["days"][:4])
    # 03-08: c6's question at 23:59:59 (its answer is on 03-09)
    assert (prison["days"][4]["cycles"], prison["days"][4]["messages"]) == (1, 1)
    # eight hours later (04:00 on 03-11 in Shanghai, still 03-10 in UTC) the days move on
    clock.at = NOW + timedelta(hours=8)
    _, later = await api.get("/stats", sc.officer)
    assert (later["from"], later["to"]) == ("2026-03-05", "2026-03-11")
    # only "to": the seven days ending then
    _, ending = await api.get("/stats?to=2026-01-31", sc.officer)
    assert (ending["from"], ending["to"]) == ("2026-01-25", "2026-01-31")


async def test_a_range_is_checked(api: Api, clock: Clock) -> None:
    sc = await build(api.store)
    p = await people(api, sc)
    bad = [
        ("/stats?from=2026-03-10&to=2026-03-09", "from"),  # from after to
        ("/stats?from=2025-03-09&to=2026-03-10", "from"),  # 367 days
        ("/stats?from=2026-02-30", "from"),
        ("/stats?to=yesterday", "to"),
        ("/stats?prison=GM", "prison"),
        ("/stats?prison=0", "prison"),
        ("/stats?day=2026-03-10", "day"),  # unknown parameter
        ("/stats/bureau?from=2026-03-10&to=2026-03-01", "from"),
        ("/stats/bureau?from=2000-01-01&to=2026-03-01", "from"),
    ]
    for path, field in bad:
        status, got = await api.get(path, p.admin)
        assert status == 400, path
        assert got["error"]["code"] == "invalid_request", path
        assert got["error"].get("field") == field, path
    status, longest = await api.get("/stats?from=2025-03-10&to=2026-03-10", p.admin)
    assert status == 200  # exactly 366 days
    assert [len(prison["days"]) for prison in longest["prisons"]] == [366, 366]
    assert sum(d["cycles"] for d in longest["prisons"][0]["days"]) == 8  # c7 to c4 (GM)
    status, one = await api.get("/stats?from=2026-03-10&to=2026-03-10", p.admin)
    assert status == 200 and [len(x["days"]) for x in one["prisons"]] == [1, 1]


async def test_a_prison_one_may_not_read_is_not_found(api: Api, clock: Clock) -> None:
    sc = await build(api.store)
    p = await people(api, sc)
    for who, prison in (
        (sc.officer, sc.sanshui.id),
        (sc.officer_s, sc.gaoming.id),
        (p.supervisor, sc.sanshui.id),
        (p.supervisor_s, sc.gaoming.id),
        (p.admin, 999_999),
        (sc.officer, 999_999),
    ):
        status, got = await api.get(f"/stats?prison={prison}", who)
        assert (status, got["error"]["code"]) == (404, "not_found"), (who.login, prison)
    status, got = await api.get("/stats", sc.relatives["r1"])
    assert (status, got["error"]["code"]) == (403, "forbidden")
    status, got = await api.get("/stats", None)
    assert (status, got["error"]["code"]) == (401, "not_authenticated")


async def test_the_bureau_figures_are_exact_and_the_admins_alone(api: Api, clock: Clock) -> None:
    sc = await build(api.store)
    p = await people(api, sc)
    status, got = await api.get(f"/stats/bureau?{RANGE}", p.admin)
    assert status == 200
    assert got == wire(BureauReply(DAY1, DAY2, "Asia/Shanghai", NOW, EXPECTED_BUREAU))
    for who in (sc.officer, p.supervisor, p.both, sc.relatives["r1"]):
        status, refused = await api.get(f"/stats/bureau?{RANGE}", who)
        assert (status, refused["error"]["code"]) == (403, "forbidden"), who.login


async def test_officers_never_see_a_complaint_figure(api: Api, clock: Clock) -> None:
    sc = await build(api.store)
    for path in ("/stats", f"/stats?{RANGE}", f"/stats?{RANGE}&prison={sc.gaoming.id}"):
        status, got = await api.get(path, sc.officer)
        assert status == 200
        assert "complaint" not in json.dumps(got).lower(), path


# end to end: a relative and an officer talk over real sockets


def local_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


async def test_stats_equal_the_figures_of_a_real_conversation(api: Api, clock: Clock) -> None:
    """Question, answer, follow-up, a note, a second answer, resolved; then another relative
    asks and is still waiting. GET /stats equals what the acks' times say."""
    store = api.store
    w = await seed(store)
    staff = await seed_staff(store, w)
    api.tokens.update({u.id: w.token(u) for u in (w.officer, w.supervisor, w.other_officer)})
    async with (
        Reader(client(api.ws, w.token(w.relative))) as relative,
        Reader(client(api.ws, w.token(w.relative_b))) as relative_b,
        Reader(client(api.ws, w.token(w.officer))) as officer,
    ):
        question = await relative.client.send(w.conv.id, "How is he?")
        answer = await officer.client.send(w.conv.id, "He is well.")
        follow_up = await relative.client.send(w.conv.id, "Thank you")
        await officer.client.send(w.conv.id, "called the ward", kind="note")
        second = await officer.client.send(w.conv.id, "You are welcome.")
        resolved_at = utcnow()
        await desk.resolve(store, w.conv.id, w.officer.id, resolved_at)
        waiting = await relative_b.client.send(w.conv_b.id, "Can I visit?")
    clock.at = utcnow()
    now = clock.at

    texts = [question.at, answer.at, follow_up.at, second.at, waiting.at]
    response = (answer.at - question.at).total_seconds()
    today = local_day(now)
    days = [today - timedelta(days=n) for n in range(6, -1, -1)]
    expected_days = []
    for day in days:
        cycles = [at for at in (question.at, waiting.at) if local_day(at) == day]
        answered = [response] if local_day(question.at) == day else []
        counted = len(answered) + sum(
            1 for at in (waiting.at,) if local_day(at) == day and (now - at).total_seconds() > 300
        )
        expected_days.append(
            {
                "day": day.isoformat(),
                "conversations": len(cycles),  # one cycle each
                "messages": sum(1 for at in texts if local_day(at) == day),
                "cycles": len(cycles),
                "answered": len(answered),
                "median_s": statistics.median(answered) if answered else None,
                "p90_s": answered[0] if answered else None,
                "within_5_min": (
                    (sum(1 for s in answered if s <= 300) / counted) if counted else None
                ),
                "resolved": int(local_day(resolved_at) == day),
            }
        )
    assert response < 300  # the answer came at once
    expected = {
        "from": days[0].isoformat(),
        "to": today.isoformat(),
        "timezone": "Asia/Shanghai",
        "at": wire(now),
        "prisons": [
            {
                "prison_id": w.gaoming.id,
                "code": "GM",
                "name": "Gaoming Prison",
                "waiting": 1,
                "longest_wait_s": (now - waiting.at).total_seconds(),
                "days": expected_days,
                "flags": [],
                "flags_unreviewed": 0,
            }
        ],
    }
    for who in (w.supervisor, w.officer):
        status, got = await api.get("/stats", who)
        assert status == 200
        assert got == expected, who.login
    _, sanshui = await api.get("/stats", w.other_officer)
    [other] = sanshui["prisons"]
    assert other["waiting"] == 0 and all(d["messages"] == 0 for d in other["days"])
    status, bureau = await api.get("/stats/bureau", staff.admin)
    assert status == 200
    assert bureau["days"][-1]["messages"] == sum(1 for at in texts if local_day(at) == today)
    assert bureau["days"][-1]["followers"] == 2  # relative and relative_b, verified today
    assert bureau["days"][-1]["relatives"] == 3  # the world's relatives, registered today
