"""Figures for a period (storage/period_figures.py, ``GET /stats/period``): totals, ratings
and each officer's response figures of a scripted history computed by hand, on SQLite and
PostgreSQL; and the route over HTTP with its scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import accounts, conversations, links
from storage.figures import PrisonName
from storage.period_figures import OfficerFigures, Ratings, Totals, period_figures, ratings_of
from storage.prisons import add_inmate, add_prison
from storage.sql import Database
from tests.test_desk import Site, site  # noqa: F401 (the fixture)
from tests.test_figures import Script

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def test_ratings_of_counts_each_star() -> None:
    assert ratings_of([]) == Ratings(count=0, average=None, distribution=[0, 0, 0, 0, 0])
    assert ratings_of([5, 5, 1]) == Ratings(count=3, average=3.67, distribution=[1, 0, 0, 0, 2])


async def rate(store: Database, conv: int, stars: int) -> None:
    async with store.write() as sql:
        await sql.execute(
            "UPDATE conversation_cycles SET rating = $2 WHERE conversation_id = $1"
            " AND cycle = (SELECT cycle FROM conversations WHERE id = $1)",
            conv,
            stars,
        )


async def test_period_figures_of_a_scripted_history(store: Database) -> None:
    gm = await add_prison(store, "GM", "Gaoming Prison", "Foshan")
    li = await accounts.add_user(store, "officer", "officer.li", "Officer Li", "x", [gm.id])
    chen = await accounts.add_user(store, "officer", "officer.chen", "Officer Chen", "x", [gm.id])
    await accounts.add_user(store, "officer", "officer.wu", "Officer Wu", "x", [gm.id])
    convs = []
    relatives = []
    for n in range(2):
        relative = await accounts.add_user(store, "relative", f"1380000000{n}", f"R{n}", "x")
        inmate = await add_inmate(store, gm.id, f"GM-{n}", f"Inmate {n}")
        link = await links.request_link(store, relative.id, inmate.id, "mother", "card")
        await links.decide_link(store, link, "verified", li.id, None)
        convs.append((await conversations.open_conversation(store, relative.id, inmate.id)).id)
        relatives.append(relative)
    script = Script(store)
    one, two = convs
    await script.say(one, relatives[0], T0)  # answered by Li in 60 s, rated 5
    await script.say(one, li, T0 + 60 * S)
    await script.resolve(one, li, T0 + 120 * S)
    await rate(store, one, 5)
    await script.say(two, relatives[1], T0 + 600 * S)  # the away reply is no answer
    await script.say(two, relatives[1], T0 + 605 * S, kind="system")
    await script.say(two, chen, T0 + 1200 * S)  # 600 s: late
    await script.say(two, chen, T0 + 1210 * S, kind="note")  # notes are not counted
    await script.resolve(two, chen, T0 + 1300 * S)
    await rate(store, two, 2)
    await script.say(one, relatives[0], T0 + 3600 * S)  # never answered: late by now
    now = T0 + 7200 * S

    [got] = await period_figures(
        store, [PrisonName(gm.id, "GM", "Gaoming Prison")], T0, T0 + timedelta(days=1), now
    )
    assert got.totals == Totals(
        conversations=2,
        messages=6,
        cycles=3,
        answered=2,
        median_s=330.0,
        p90_s=600.0,
        within_5_min=1 / 3,
        late=2,
        resolved=2,
        target_s=300,
    )
    assert got.ratings == Ratings(count=2, average=3.5, distribution=[0, 1, 0, 0, 1])
    assert got.officers == [
        OfficerFigures(
            officer_id=chen.id,
            name="Officer Chen",
            answered=1,
            median_s=600.0,
            p90_s=600.0,
            within_5_min=0.0,
            messages=1,
            resolved=1,
            rated=1,
            rating_average=2.0,
        ),
        OfficerFigures(
            officer_id=li.id,
            name="Officer Li",
            answered=1,
            median_s=60.0,
            p90_s=60.0,
            within_5_min=1.0,
            messages=1,
            resolved=1,
            rated=1,
            rating_average=5.0,
        ),
        OfficerFigures(
            officer_id=got.officers[2].officer_id,
            name="Officer Wu",  # answered nothing: still listed
            answered=0,
            median_s=None,
            p90_s=None,
            within_5_min=None,
            messages=0,
            resolved=0,
            rated=0,
            rating_average=None,
        ),
    ]


async def test_the_period_route_over_http(site: Site) -> None:  # noqa: F811
    w = site.world
    status, got = await site.call("GET", "/stats/period", w.officer)
    assert status == 200
    [prison] = got["prisons"]
    assert prison["code"] == "GM"
    assert prison["ratings"] == {"count": 0, "average": None, "distribution": [0, 0, 0, 0, 0]}
    assert {o["name"] for o in prison["officers"]} == {"Officer Li", "Officer 0"}
    status, got = await site.call("GET", f"/stats/period?prison={w.sanshui.id}", w.officer)
    assert (status, got["error"]["code"]) == (404, "not_found")
    status, got = await site.call("GET", "/stats/period?from=2026-12-07&to=2026-01-01", w.officer)
    assert (status, got["error"]["field"]) == (400, "from")
    status, got = await site.call("GET", "/stats/period", w.relative)
    assert status == 403
