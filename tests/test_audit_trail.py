"""The audit trail: read back with filters on both stores, served to supervisors (their
prisons) and the admin (everything), and never changed or deleted, by the API or the schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.records import Prison, User
from storage import accounts, audit_trail, prisons
from storage.audit_trail import Actor, TrailQuery
from storage.sql import Database
from tests import test_oversight
from tests.test_oversight import Site

site = test_oversight.site  # the same fixture: PostgreSQL, Redis, a server, a seeded world

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass
class Trail:
    gaoming: Prison
    sanshui: Prison
    officer: User
    supervisor: User
    other_officer: User
    admin: User
    ids: list[int]  # the entries, in the order written (ids[0] is the oldest)


async def write_trail(
    store: Database,
    gaoming: Prison,
    sanshui: Prison,
    officer: User,
    supervisor: User,
    other_officer: User,
    admin: User,
) -> Trail:
    """Six entries an hour apart: two prisons, one bureau-wide, one by the system."""
    rows: list[tuple[User | None, str, str, int, Prison | None, Any, Any]] = [
        (officer, "link.verified", "family_link", 11, gaoming, {"state": "pending"}, None),
        (supervisor, "conversation.opened", "conversation", 5, gaoming, None, {"via": "watch"}),
        (other_officer, "link.rejected", "family_link", 12, sanshui, None, {"reason": "photo"}),
        (admin, "user.create", "user", officer.id, None, None, {"role": "officer"}),
        (None, "conversation.reopened", "conversation", 5, gaoming, None, None),
        (supervisor, "conversation.opened", "conversation", 6, gaoming, None, {"via": "history"}),
    ]
    ids = []
    for n, (actor, action, kind, object_id, prison, before, after) in enumerate(rows):
        ids.append(
            await audit_trail.append(
                store,
                at=T0 + n * HOUR,
                actor_id=actor.id if actor else None,
                action=action,
                object_type=kind,
                object_id=object_id,
                prison_id=prison.id if prison else None,
                before=before,
                after=after,
            )
        )
    return Trail(gaoming, sanshui, officer, supervisor, other_officer, admin, ids)


async def trail_in(store: Database) -> Trail:
    gaoming = await prisons.add_prison(store, "GM", "Gaoming Prison")
    sanshui = await prisons.add_prison(store, "SS", "Sanshui Prison")
    officer = await accounts.add_user(
        store, "officer", "officer.li", "Officer Li", "x", [gaoming.id]
    )
    supervisor = await accounts.add_user(
        store, "supervisor", "sup.wang", "Wang Fang", "x", [gaoming.id]
    )
    other = await accounts.add_user(
        store, "officer", "officer.zhao", "Officer Zhao", "x", [sanshui.id]
    )
    admin = await accounts.add_user(store, "admin", "admin.he", "He Ping", "x")
    return await write_trail(store, gaoming, sanshui, officer, supervisor, other, admin)


async def test_entries_are_read_newest_first_with_who_and_filtered(store: Database) -> None:
    t = await trail_in(store)
    e1, e2, e3, e4, e5, e6 = t.ids

    async def ids(**filters: Any) -> list[int]:
        return [e.id for e in await audit_trail.entries(store, TrailQuery(**filters))]

    everything = await audit_trail.entries(store, TrailQuery())
    assert [e.id for e in everything] == [e6, e5, e4, e3, e2, e1]
    watched = everything[4]
    assert watched.actor == Actor(t.supervisor.id, "Wang Fang", "supervisor")
    assert (watched.at, watched.action, watched.object_type, watched.object_id) == (
        T0 + HOUR,
        "conversation.opened",
        "conversation",
        5,
    )
    assert (watched.prison_id, watched.before, watched.after) == (
        t.gaoming.id,
        None,
        {"via": "watch"},
    )
    assert everything[1].actor is None  # the system's own entry
    assert everything[5].before == {"state": "pending"}

    # scope: a prison's entries, several prisons', none
    assert await ids(prison_ids=(t.gaoming.id,)) == [e6, e5, e2, e1]
    assert await ids(prison_ids=(t.gaoming.id, t.sanshui.id)) == [e6, e5, e3, e2, e1]
    assert await ids(prison_ids=()) == []
    # who, what, which object
    assert await ids(actor_id=t.supervisor.id) == [e6, e2]
    assert await ids(action="conversation.opened") == [e6, e2]
    assert await ids(action_prefix="conversation.") == [e6, e5, e2]
    assert await ids(action_prefix="link.") == [e3, e1]
    assert await ids(object_type="conversation", object_id=5) == [e5, e2]
    assert await ids(object_type="family_link", object_id=12) == [e3]
    # when: since inclusive, until exclusive
    assert await ids(since=T0 + HOUR, until=T0 + 4 * HOUR) == [e4, e3, e2]
    assert await ids(since=T0 + 5 * HOUR) == [e6]
    assert await ids(until=T0 + HOUR) == [e1]
    # together, and paged back by id
    assert await ids(prison_ids=(t.gaoming.id,), since=T0 + 2 * HOUR) == [e6, e5]
    assert await ids(limit=2) == [e6, e5]
    assert await ids(limit=2, before_id=e5) == [e4, e3]
    assert await ids(limit=2, before_id=e3) == [e2, e1]
    assert await ids(limit=2, before_id=e1) == []


async def test_the_database_refuses_to_change_or_delete_an_audit_entry(store: Database) -> None:
    """The append-only trigger, on both schemas: whoever holds a connection cannot rewrite
    history through it (UPDATE or DELETE of one entry, or of all)."""
    t = await trail_in(store)
    before = await audit_trail.entries(store, TrailQuery())
    statements: list[tuple[str, tuple[Any, ...]]] = [
        ("UPDATE audit_entries SET action = 'nothing.happened' WHERE id = $1", (t.ids[1],)),
        ("UPDATE audit_entries SET actor_id = NULL", ()),
        ("DELETE FROM audit_entries WHERE id = $1", (t.ids[1],)),
        ("DELETE FROM audit_entries", ()),
    ]
    for statement, args in statements:
        try:
            async with store.write() as sql:
                await sql.execute(statement, *args)
        except Exception as refused:  # asyncpg's RaiseError or sqlite3's IntegrityError
            assert "append-only" in str(refused), statement
        else:
            raise AssertionError(f"the database allowed: {statement}")
    assert await audit_trail.entries(store, TrailQuery()) == before
    # appending still works
    again = await audit_trail.append(
        store,
        at=T0,
        actor_id=None,
        action="x.y",
        object_type="x",
        object_id=None,
        prison_id=None,
    )
    assert again > max(t.ids)


# over HTTP: who reads what


async def http_trail(site: Site) -> Trail:
    w = site.world
    return await write_trail(
        site.store,
        w.gaoming,
        w.sanshui,
        w.officer,
        w.supervisor,
        w.other_officer,
        site.staff.admin,
    )


async def test_supervisors_read_their_prisons_entries_and_the_admin_all(site: Site) -> None:
    t = await http_trail(site)
    e1, e2, e3, e4, e5, e6 = t.ids
    w, staff = site.world, site.staff

    async def ids(who: User, **filters: Any) -> list[int]:
        status, page = await site.call("GET", "/audit", who, **filters)
        assert status == 200, page
        return [e["id"] for e in page["entries"]]

    assert await ids(w.supervisor) == [e6, e5, e2, e1]  # Gaoming's only
    assert await ids(staff.other_supervisor) == [e3]  # Sanshui's only
    assert await ids(staff.admin) == [e6, e5, e4, e3, e2, e1]  # and the bureau's own
    assert await ids(staff.admin, prison=w.sanshui.id) == [e3]
    assert await ids(w.supervisor, prison=w.gaoming.id) == [e6, e5, e2, e1]

    status, page = await site.call("GET", "/audit", w.supervisor, limit=1)
    assert status == 200
    assert page == {
        "entries": [
            {
                "id": e6,
                "at": "2026-03-01T05:00:00Z",
                "actor": {"id": w.supervisor.id, "name": "Wang Fang", "role": "supervisor"},
                "action": "conversation.opened",
                "object_type": "conversation",
                "object_id": 6,
                "prison_id": w.gaoming.id,
                "before": None,
                "after": {"via": "history"},
            }
        ],
        "next_before_id": e6,
    }

    for who, expected in (
        (None, (401, "not_authenticated")),
        (w.relative, (403, "forbidden")),
        (w.stranger, (403, "forbidden")),
        (w.officer, (403, "forbidden")),
        (w.other_officer, (403, "forbidden")),
    ):
        status, refused = await site.call("GET", "/audit", who)
        assert (status, refused["error"]["code"]) == expected
    # a supervisor naming a prison it does not supervise
    status, refused = await site.call("GET", "/audit", w.supervisor, prison=w.sanshui.id)
    assert (status, refused["error"]["code"]) == (403, "forbidden")


async def test_the_trail_is_filtered_by_actor_action_object_and_time(site: Site) -> None:
    t = await http_trail(site)
    e1, e2, e3, e4, e5, e6 = t.ids
    w, admin = site.world, site.staff.admin

    async def ids(**filters: Any) -> list[int]:
        status, page = await site.call("GET", "/audit", admin, **filters)
        assert status == 200, page
        return [e["id"] for e in page["entries"]]

    assert await ids(actor=w.supervisor.id) == [e6, e2]
    assert await ids(actor=w.officer.id) == [e1]
    assert await ids(action="conversation.opened") == [e6, e2]
    assert await ids(action="conversation.*") == [e6, e5, e2]
    assert await ids(action="link.*", prison=w.sanshui.id) == [e3]
    assert await ids(object_type="conversation", object_id=5) == [e5, e2]
    assert await ids(object_type="user") == [e4]
    # time: RFC 3339 with any offset; since inclusive, until exclusive
    assert await ids(since="2026-03-01T01:00:00Z", until="2026-03-01T04:00:00Z") == [e4, e3, e2]
    assert await ids(since="2026-03-01T10:00:00+08:00") == [e6, e5, e4, e3]  # from 02:00Z
    # paging: follow next_before_id to the end
    seen, cursor = [], None
    while True:
        filters: dict[str, Any] = {"limit": 4} | ({"before_id": cursor} if cursor else {})
        _, page = await site.call("GET", "/audit", admin, **filters)
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next_before_id"]
        if cursor is None:
            break
    assert seen == [e6, e5, e4, e3, e2, e1]

    for bad, field in (
        ({"since": "2026-03-01T01:00:00"}, "since"),  # no offset: which time is it?
        ({"since": "yesterday"}, "since"),
        ({"actor": "wang"}, "actor"),
        ({"action": "DROP TABLE"}, "action"),
        ({"limit": 0}, "limit"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "until"),
        ({"who": "me"}, "who"),
    ):
        status, refused = await site.call("GET", "/audit", admin, **bad)
        assert (status, refused["error"]["code"], refused["error"].get("field")) == (
            400,
            "invalid_request",
            field,
        ), bad


async def test_no_one_can_change_or_delete_an_entry_over_http(site: Site) -> None:
    t = await http_trail(site)
    before = (await site.call("GET", "/audit", site.staff.admin))[1]
    for who in (site.staff.admin, site.world.supervisor, site.world.officer):
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            status, refused = await site.call(method, "/audit", who)
            assert (status, refused["error"]["code"]) == (405, "method_not_allowed"), method
            status, refused = await site.call(method, f"/audit/{t.ids[0]}", who)
            assert (status, refused["error"]["code"]) == (404, "not_found"), method
    assert (await site.call("GET", "/audit", site.staff.admin))[1] == before
