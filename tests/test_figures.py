"""Figures (storage/figures.py): the pure helpers, and every figure of a scripted scenario
computed by hand, on SQLite and PostgreSQL.

The scenario is written through ``store`` with chosen timestamps: messages (notes and a
system message among them), resolutions, relatives, links and complaints. The cycles are
those the desk's trigger on ``messages`` makes of the messages (the contract's
"Conversation life cycle"); the first test checks them against the script.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from domain.records import Prison, User
from storage import accounts, conversations, links
from storage.figures import (
    BureauDay,
    DayFigures,
    PrisonFigures,
    PublicFigures,
    bureau_figures,
    day_index,
    day_starts,
    local_days,
    median,
    p90,
    prison_figures,
    prisons,
    public_figures,
    within_share,
)
from storage.prisons import add_inmate, add_prison
from storage.sql import Database

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1, DAY2 = date(2026, 3, 9), date(2026, 3, 10)


def local(day: int, hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    """A moment of March 2026, Shanghai time, as UTC."""
    return datetime(2026, 3, day, hour, minute, second, micro, tzinfo=SHANGHAI).astimezone(UTC)


NOW = local(10, 20, 0)  # 2026-03-10 20:00 in Shanghai, 12:00 UTC


# pure helpers

finite = st.floats(min_value=0, max_value=1e7, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=60))
def test_median_is_statistics_median(values: list[float]) -> None:
    assert median(values) == statistics.median(values)


@given(st.lists(finite, min_size=1, max_size=60))
def test_p90_is_the_nearest_rank(values: list[float]) -> None:
    got = p90(values)
    assert got in values
    n = len(values)
    # nearest rank: the smallest value with at least 90% of the values at or below it
    assert sum(v <= got for v in values) >= 0.9 * n
    assert sum(v < got for v in values) < 0.9 * n


def test_percentiles_of_known_lists_and_of_nothing() -> None:
    assert median([]) is None and p90([]) is None
    assert p90([7.0]) == 7.0 and median([7.0]) == 7.0
    assert p90([float(v) for v in range(1, 11)]) == 9.0  # ceil(9.0) = 9th
    assert p90([float(v) for v in range(1, 12)]) == 10.0  # ceil(9.9) = 10th
    assert p90([3.0, 1.0]) == 3.0 and median([3.0, 1.0]) == 2.0


def test_within_five_minutes_counts_late_and_leaves_out_the_young() -> None:
    t = datetime(2026, 3, 10, tzinfo=UTC)
    s = timedelta(seconds=1)
    now = t + 1000 * s
    assert within_share([(t, t + 300 * s)], now) == 1.0  # 300 s is within
    assert within_share([(t, t + 300 * s + s / 10**6)], now) == 0.0
    assert within_share([(now - 300 * s, None)], now) is None  # can still make it
    assert within_share([(now - 301 * s, None)], now) == 0.0  # can no longer
    assert within_share([(t, now + s)], now) == 0.0  # a reply after "now" has not happened
    assert within_share([], now) is None
    assert within_share([(t, t + s), (t, None), (now - s, None)], now) == 0.5


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    st.integers(min_value=0, max_value=40),
    st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/Sao_Paulo", "UTC"]),
)
def test_a_moment_falls_in_its_local_day(moment: datetime, span: int, name: str) -> None:
    zone = ZoneInfo(name)
    at = moment.replace(tzinfo=UTC)
    first = at.astimezone(zone).date() - timedelta(days=span // 2)
    last = first + timedelta(days=span)
    starts = day_starts(first, last, zone)
    assert len(starts) == len(local_days(first, last)) + 1
    i = day_index(at, starts)
    assert i is not None and local_days(first, last)[i] == at.astimezone(zone).date()
    assert day_index(starts[0] - timedelta(microseconds=1), starts) is None
    assert day_index(starts[-1], starts) is None


def test_local_midnight_starts_the_next_day() -> None:
    starts = day_starts(DAY1, DAY2, SHANGHAI)
    assert starts == [local(9, 0, 0), local(10, 0, 0), local(11, 0, 0)]
    assert starts[1] == datetime(2026, 3, 9, 16, tzinfo=UTC)
    assert day_index(local(9, 23, 59, 59, 999999), starts) == 0
    assert day_index(local(10, 0, 0), starts) == 1


# the scenario


@dataclass
class Script:
    """Writes conversations' lives with chosen times: messages (whose cycles the desk's
    trigger on ``messages`` starts and answers, whoever inserts them) and resolutions (as
    ``storage/desk.py`` records them)."""

    store: Database
    cids: itertools.count[int] = field(default_factory=itertools.count)

    async def say(self, conv: int, who: User, at: datetime, kind: str = "text") -> None:
        async with self.store.write() as sql:
            seq = await sql.fetchval(
                "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
                conv,
            )
            await sql.execute(
                "INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind,"
                " body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                conv,
                seq,
                who.id,
                who.role,
                f"c{next(self.cids)}",
                kind,
                f"{kind} at {at.isoformat()}",
                at,
            )

    async def resolve(self, conv: int, who: User, at: datetime) -> None:
        async with self.store.write() as sql:
            await sql.execute(
                "UPDATE conversation_cycles SET resolved_at = $2, resolved_by = $3"
                " WHERE conversation_id = $1"
                " AND cycle = (SELECT cycle FROM conversations WHERE id = $1)",
                conv,
                at,
                who.id,
            )
            await sql.execute(
                "UPDATE conversations SET state = 'resolved', assigned_officer_id = NULL"
                " WHERE id = $1",
                conv,
            )


@dataclass
class Scenario:
    gaoming: Prison
    sanshui: Prison
    officer: User  # of Gaoming
    officer_s: User  # of Sanshui
    relatives: dict[str, User]
    convs: dict[str, int]


C7_START = NOW - timedelta(days=31)
SEC = timedelta(seconds=1)


async def build(store: Database) -> Scenario:
    """Two prisons, five relatives, seven conversations, nine cycles, six complaints."""
    db = store
    gm = await add_prison(store, "GM", "Gaoming Prison", "Foshan")
    ss = await add_prison(store, "SS", "Sanshui Prison", "Foshan")
    officer = await accounts.add_user(store, "officer", "officer.li", "Officer Li", "x", [gm.id])
    officer_s = await accounts.add_user(
        store, "officer", "officer.zhao", "Officer Zhao", "x", [ss.id]
    )
    registered = {
        "r1": local(1, 8, 0),
        "r2": local(9, 10, 0),  # new on day 1
        "r3": local(10, 0, 0),  # new on day 2, at its very first microsecond
        "r4": local(2, 8, 0),
        "r5": local(2, 9, 0),
    }
    rel: dict[str, User] = {}
    for n, (name, at) in enumerate(registered.items()):
        rel[name] = await accounts.add_user(store, "relative", f"1380000000{n}", name.upper(), "x")
        async with db.write() as sql:
            await sql.execute("UPDATE users SET created_at = $1 WHERE id = $2", at, rel[name].id)
    inmates = [(await add_inmate(store, gm.id, f"GM-{n}", f"Inmate {n}")).id for n in range(7)]
    inmate_s = (await add_inmate(store, ss.id, "SS-1", "Inmate S")).id

    # links: r1 since 03-05; r2 verified at the last microsecond of day 1; r3 pending;
    # r4 verified 03-03, revoked at the first microsecond of day 2 (still a follower at the
    # end of day 1); r5 twice verified (one follower)
    async def link(who: str, inmate: int, state: str, decided: datetime | None) -> int:
        link_id = await links.request_link(store, rel[who].id, inmate, "mother", "card")
        async with db.write() as sql:
            await sql.execute(
                "UPDATE family_links SET state = $1, decided_at = $2, decided_by = $3"
                " WHERE id = $4",
                state,
                decided,
                officer.id if decided else None,
                link_id,
            )
        return link_id

    await link("r1", inmates[0], "verified", local(5, 10, 0))
    await link("r2", inmates[1], "verified", local(9, 23, 59, 59, 999999))
    await link("r3", inmates[2], "pending", None)
    revoked = await link("r4", inmates[2], "revoked", local(10, 0, 0))
    await link("r5", inmates[3], "verified", local(4, 10, 0))
    await link("r5", inmates[4], "verified", local(4, 11, 0))
    async with db.write() as sql:
        await sql.execute(
            "INSERT INTO audit_entries (at, actor_id, action, object_type, object_id, prison_id,"
            " before, after) VALUES ($1, $2, 'link.verified', 'family_link', $3, $4, $5, $6)",
            local(3, 10, 0),
            officer.id,
            revoked,
            gm.id,
            {"state": "pending"},
            {"state": "verified", "reason": None},
        )

    convs = {}
    for name, who, inmate in (
        ("c1", "r1", inmates[0]),
        ("c2", "r2", inmates[1]),
        ("c3", "r4", inmates[2]),
        ("c4", "r5", inmates[3]),
        ("c6", "r5", inmates[4]),
        ("c7", "r5", inmates[5]),
        ("c5", "r1", inmate_s),
    ):
        convs[name] = (await conversations.open_conversation(store, rel[who].id, inmate)).id

    s = Script(store)
    c = convs
    # a month ago: out of the public figures' 30 days
    await s.say(c["c7"], rel["r5"], C7_START)
    await s.say(c["c7"], officer, C7_START + timedelta(seconds=10))
    await s.resolve(c["c7"], officer, C7_START + timedelta(seconds=60))
    # the day before day 1: its reply (11 s) and resolution fall on day 1
    await s.say(c["c6"], rel["r5"], local(8, 23, 59, 59))
    await s.say(c["c6"], officer, local(9, 0, 0, 10))
    await s.resolve(c["c6"], officer, local(9, 0, 1))
    # day 1: 120 s, with a note before the reply (neither a reply nor a message)
    await s.say(c["c1"], rel["r1"], local(9, 9, 0))
    await s.say(c["c1"], officer, local(9, 9, 1), "note")
    await s.say(c["c1"], officer, local(9, 9, 2))
    await s.resolve(c["c1"], officer, local(9, 9, 30))
    # day 1: 600 s; a second relative message does not start a cycle; resolved on day 2
    await s.say(c["c2"], rel["r2"], local(9, 10, 0))
    await s.say(c["c2"], rel["r2"], local(9, 10, 0, 30))
    await s.say(c["c2"], officer, local(9, 10, 10))
    # day 1 at 23:58, answered on day 2 at 00:03: exactly 300 s, within
    await s.say(c["c1"], rel["r1"], local(9, 23, 58))
    # day 2 from its first microsecond: 45 s
    await s.say(c["c3"], rel["r4"], local(10, 0, 0))
    await s.say(c["c3"], officer, local(10, 0, 0, 45))
    await s.say(c["c1"], officer, local(10, 0, 3))
    await s.resolve(c["c3"], officer, local(10, 0, 5))
    await s.resolve(c["c1"], officer, local(10, 0, 10))
    await s.resolve(c["c2"], officer, local(10, 8, 0))
    # Sanshui, day 2: 60 s
    await s.say(c["c5"], rel["r1"], local(10, 11, 0))
    await s.say(c["c5"], officer_s, local(10, 11, 1))
    await s.resolve(c["c5"], officer_s, local(10, 11, 5))
    # day 2: a system message counts as a message, a note does not
    await s.say(c["c3"], officer, local(10, 12, 0), "system")
    await s.say(c["c3"], officer, local(10, 12, 1), "note")
    # day 2, still waiting at NOW (20:00): 600 s (too late) and 180 s (can still make it)
    await s.say(c["c2"], rel["r2"], local(10, 19, 50))
    await s.say(c["c4"], rel["r5"], local(10, 19, 57))

    # complaints (Gaoming, filed by r1)
    complaints = [
        # filed long ago, never answered: open and overdue on both days (no events)
        ("GM-1", local(1, 8, 0) - timedelta(days=9), local(7, 8, 0), "received", []),
        # day 1: in review that day, answered on day 2 at 10:00
        (
            "GM-2",
            local(9, 8, 0),
            local(24, 8, 0),
            "answered",
            [
                ("received", local(9, 8, 0)),
                ("in_review", local(9, 12, 0)),
                ("answered", local(10, 10, 0)),
            ],
        ),
        # day 1: escalated that day, due on day 2 at noon: overdue at NOW, not at day 1's end
        (
            "GM-3",
            local(9, 9, 0),
            local(10, 12, 0),
            "escalated",
            [("received", local(9, 9, 0)), ("escalated", local(9, 15, 0))],
        ),
        # day 2: filed and closed that evening
        (
            "GM-4",
            local(10, 19, 0),
            local(25, 19, 0),
            "closed",
            [("received", local(10, 19, 0)), ("closed", local(10, 19, 30))],
        ),
        # in review since 03-06, due on day 2 at 21:00: not overdue yet at NOW (20:00)
        (
            "GM-6",
            local(5, 9, 0),
            local(10, 21, 0),
            "in_review",
            [("received", local(5, 9, 0)), ("in_review", local(6, 9, 0))],
        ),
        # long closed, no events: closed since it was filed
        ("GM-5", local(1, 8, 0) - timedelta(days=60), local(1, 8, 0), "closed", []),
    ]
    async with db.write() as sql:
        for reference, filed, deadline, state, events in complaints:
            complaint = await sql.fetchval(
                "INSERT INTO complaints (reference, prison_id, complainant_id, category, body,"
                " state, deadline, created_at) VALUES ($1, $2, $3, 'conduct', 'text', $4, $5, $6)"
                " RETURNING id",
                reference,
                gm.id,
                rel["r1"].id,
                state,
                deadline,
                filed,
            )
            for event_state, at in events:
                await sql.execute(
                    "INSERT INTO complaint_events (complaint_id, actor_id, state, message,"
                    " created_at) VALUES ($1, $2, $3, 'msg', $4)",
                    complaint,
                    rel["r1"].id,
                    event_state,
                    at,
                )
    return Scenario(gm, ss, officer, officer_s, rel, convs)


# what was worked out by hand from the script above


def expected_cycles(
    sc: Scenario,
) -> list[tuple[int, int, datetime, datetime | None, datetime | None]]:
    c = sc.convs
    return sorted(
        [
            (c["c7"], 1, C7_START, C7_START + 10 * SEC, C7_START + 60 * SEC),
            (c["c6"], 1, local(8, 23, 59, 59), local(9, 0, 0, 10), local(9, 0, 1)),
            (c["c1"], 1, local(9, 9, 0), local(9, 9, 2), local(9, 9, 30)),
            (c["c2"], 1, local(9, 10, 0), local(9, 10, 10), local(10, 8, 0)),
            (c["c1"], 2, local(9, 23, 58), local(10, 0, 3), local(10, 0, 10)),
            (c["c3"], 1, local(10, 0, 0), local(10, 0, 0, 45), local(10, 0, 5)),
            (c["c5"], 1, local(10, 11, 0), local(10, 11, 1), local(10, 11, 5)),
            (c["c2"], 2, local(10, 19, 50), None, None),
            (c["c4"], 1, local(10, 19, 57), None, None),
        ]
    )


def expected_prisons(sc: Scenario) -> list[PrisonFigures]:
    nothing = DayFigures(
        day=DAY1,
        conversations=0,
        messages=0,
        cycles=0,
        answered=0,
        median_s=None,
        p90_s=None,
        within_5_min=None,
        resolved=0,
    )
    return [
        PrisonFigures(
            prison_id=sc.gaoming.id,
            code="GM",
            name="Gaoming Prison",
            waiting=2,  # c2 since 19:50, c4 since 19:57
            longest_wait_s=600.0,
            days=[
                # cycles 120, 600, 300 s (c1, c2, c1); messages: c6 1, c1 2, c2 3, c1 1;
                # resolved: c6 (started the day before), c1
                DayFigures(
                    day=DAY1,
                    conversations=2,
                    messages=7,
                    cycles=3,
                    answered=3,
                    median_s=300.0,
                    p90_s=600.0,
                    within_5_min=2 / 3,
                    resolved=2,
                ),
                # cycles 45 s (c3), unanswered 600 s (not within) and 180 s (left out);
                # messages: c1 1, c3 3 (a system one), c2 1, c4 1; resolved c3, c1, c2
                DayFigures(
                    day=DAY2,
                    conversations=3,
                    messages=6,
                    cycles=3,
                    answered=1,
                    median_s=45.0,
                    p90_s=45.0,
                    within_5_min=0.5,
                    resolved=3,
                ),
            ],
        ),
        PrisonFigures(
            prison_id=sc.sanshui.id,
            code="SS",
            name="Sanshui Prison",
            waiting=0,
            longest_wait_s=None,
            days=[
                nothing,
                DayFigures(
                    day=DAY2,
                    conversations=1,
                    messages=2,
                    cycles=1,
                    answered=1,
                    median_s=60.0,
                    p90_s=60.0,
                    within_5_min=1.0,
                    resolved=1,
                ),
            ],
        ),
    ]


EXPECTED_BUREAU = [
    BureauDay(
        day=DAY1,
        followers=4,
        relatives=4,
        new_relatives=1,
        messages=7,
        conversations=2,
        cycles=3,
        answered=3,
        median_s=300.0,
        p90_s=600.0,
        within_5_min=2 / 3,
        complaints_filed=2,
        complaints_open=4,
        complaints_overdue=1,
    ),
    BureauDay(
        day=DAY2,
        followers=3,
        relatives=5,
        new_relatives=1,
        messages=8,
        conversations=4,
        cycles=4,
        answered=2,
        median_s=52.5,
        p90_s=60.0,
        within_5_min=2 / 3,
        complaints_filed=1,
        complaints_open=3,
        complaints_overdue=2,
    ),
]


async def stored_cycles(
    store: Database,
) -> list[tuple[int, int, datetime, datetime | None, datetime | None]]:
    async with store.read() as sql:
        rows = await sql.fetch(
            "SELECT conversation_id, cycle, wait_started_at, first_reply_at, resolved_at"
            " FROM conversation_cycles ORDER BY conversation_id, cycle"
        )
        return [
            (
                r["conversation_id"],
                r["cycle"],
                sql.when(r["wait_started_at"]),
                None if r["first_reply_at"] is None else sql.when(r["first_reply_at"]),
                None if r["resolved_at"] is None else sql.when(r["resolved_at"]),
            )
            for r in rows
        ]


async def test_the_scenario_makes_the_cycles_the_contract_describes(store: Database) -> None:
    sc = await build(store)
    assert await stored_cycles(store) == expected_cycles(sc)


async def test_figures_per_prison_per_local_day(store: Database) -> None:
    sc = await build(store)
    named = await prisons(store, None)
    got = await prison_figures(store, named, DAY1, DAY2, SHANGHAI, NOW)
    assert got == expected_prisons(sc)
    sanshui = await prisons(store, [sc.sanshui.id])
    one_day = await prison_figures(store, sanshui, DAY2, DAY2, SHANGHAI, NOW)
    expected = expected_prisons(sc)[1]
    assert one_day == [msgspec.structs.replace(expected, days=expected.days[1:])]


async def test_days_are_local_days_not_utc_days(store: Database) -> None:
    """In UTC, c1's 23:58 question (15:58 UTC) and c3's 00:00 one (16:00 UTC) are on the
    same day; in Shanghai they are not, and the figures follow the zone they are given."""
    sc = await build(store)
    [gm] = await prisons(store, [sc.gaoming.id])
    [utc] = await prison_figures(store, [gm], DAY1, DAY2, ZoneInfo("UTC"), NOW)
    # UTC 03-09: 01:00, 02:00, 15:58, 16:00 | 03-10: 11:50, 11:57
    assert [d.cycles for d in utc.days] == [4, 2]
    [local_] = await prison_figures(store, [gm], DAY1, DAY2, SHANGHAI, NOW)
    assert [d.cycles for d in local_.days] == [3, 3]


async def test_public_figures_cover_the_thirty_days_before_now(store: Database) -> None:
    sc = await build(store)
    gm = sc.gaoming.id
    # c6 11, c1 120, c2 600, c1 300, c3 45 s; c2 unanswered for 600 s, c4 for 180 s (left
    # out of the share); c7 started 31 days ago
    assert await public_figures(store, gm, NOW) == PublicFigures(
        days=30, cycles=7, answered=5, median_s=120.0, p90_s=600.0, within_5_min=4 / 6
    )
    # thirty days after c7 started, to the microsecond: c7, c6, c1, c2 (answered 10:10)
    assert await public_figures(store, gm, C7_START + timedelta(days=30)) == PublicFigures(
        days=30, cycles=4, answered=4, median_s=65.5, p90_s=600.0, within_5_min=3 / 4
    )
    # at 00:00:01 on day 2 the replies of 00:00:45 and 00:03 have not happened yet: those
    # cycles are unanswered and young (181 s and 1 s), left out of the share
    assert await public_figures(store, gm, local(10, 0, 0, 1)) == PublicFigures(
        days=30, cycles=5, answered=3, median_s=120.0, p90_s=600.0, within_5_min=2 / 3
    )
    assert await public_figures(store, sc.sanshui.id, NOW) == PublicFigures(
        days=30, cycles=1, answered=1, median_s=60.0, p90_s=60.0, within_5_min=1.0
    )
    empty = await add_prison(store, "EM", "Empty")
    assert await public_figures(store, empty.id, NOW) == PublicFigures(
        days=30, cycles=0, answered=0, median_s=None, p90_s=None, within_5_min=None
    )


async def test_bureau_figures_per_local_day(store: Database) -> None:
    await build(store)
    assert await bureau_figures(store, DAY1, DAY2, SHANGHAI, NOW) == EXPECTED_BUREAU


async def test_bureau_figures_as_of_the_end_of_a_past_day(store: Database) -> None:
    """Read a day later, day 2's figures are as of its midnight: GM-6 (due at 21:00) is
    overdue, and c4's wait (180 s at NOW) has become too late for the 5-minute share."""
    await build(store)
    later = NOW + timedelta(days=1)
    [day1, day2] = await bureau_figures(store, DAY1, DAY2, SHANGHAI, later)
    assert day1 == EXPECTED_BUREAU[0]
    assert day2 == msgspec.structs.replace(
        EXPECTED_BUREAU[1], within_5_min=2 / 4, complaints_overdue=3
    )
