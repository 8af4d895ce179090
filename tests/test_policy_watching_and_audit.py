"""Watching and the audit trail, as a matrix: role x action for reading the audit trail and the
overview, watching, and what a watcher may not do (send, note, typing, read mark).

First the policy module itself, every cell (no I/O); then the same cells over real HTTP and
real sockets (PostgreSQL, Redis), where the effects are checked too: only a supervisor's
watch leaves an audit entry, and only those who may mark read leave a read cursor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.records import Conversation, NewMessage, User
from server.policy import (
    Denied,
    NotSignedIn,
    Principal,
    audit_scope,
    audits_opening,
    check_conversation,
    check_overview,
    check_record_export,
    check_thread,
    record_shows_notes,
)
from storage import desk, messages
from storage.sql import utcnow
from tests import test_oversight
from tests.test_oversight import Site, raw
from tests.world import read_cursors

site = test_oversight.site  # the same fixture: PostgreSQL, Redis, a server, a seeded world

HERE, OTHER = 1, 2  # prisons
CONV = Conversation(
    id=7,
    prison_id=HERE,
    inmate_id=70,
    relative_id=100,
    state="waiting",
    assigned_officer_id=None,
    last_seq=3,
    created_at=datetime(2026, 3, 1, tzinfo=UTC),
)
PRINCIPALS: dict[str, Principal | None] = {
    "anonymous": None,
    "supervisor": Principal(User(1, "supervisor", "s", "S", (HERE,))),
    "supervisor_both": Principal(User(2, "supervisor", "sb", "SB", (HERE, OTHER))),
    "supervisor_other": Principal(User(3, "supervisor", "so", "SO", (OTHER,))),
    "officer": Principal(User(4, "officer", "o", "O", (HERE,))),
    "officer_other": Principal(User(5, "officer", "oo", "OO", (OTHER,))),
    "relative": Principal(User(100, "relative", "r", "R"), frozenset({70})),
    "relative_other": Principal(User(101, "relative", "ro", "RO"), frozenset({71})),
    "admin": Principal(User(9, "admin", "a", "A")),
}


def outcome(decide: Callable[[], object]) -> object:
    """What a call of the policy answers: its value, or the denial's code."""
    try:
        return decide()
    except Denied as denied:
        return denied.code
    except NotSignedIn:
        return "not_authenticated"


def conversation(action: Any) -> Callable[[Principal | None], object]:
    def decide(who: Principal | None) -> object:
        if who is None:
            return "not_authenticated"

        def check() -> str:
            check_conversation(who, CONV, action)
            return "ok"

        return outcome(check)

    return decide


ACTIONS: dict[str, Callable[[Principal | None], object]] = {
    "audit.read": lambda who: outcome(lambda: audit_scope(who)),
    "audit.read here": lambda who: outcome(lambda: audit_scope(who, HERE)),
    "overview.read here": lambda who: outcome(lambda: check_overview(who, HERE) and "ok"),
    "overview.read other": lambda who: outcome(lambda: check_overview(who, OTHER) and "ok"),
    "watch": conversation("watch"),
    "read history": conversation("read"),
    "export record": lambda who: outcome(lambda: check_record_export(who, CONV) and "ok"),
    "record shows notes": lambda who: who is not None and record_shows_notes(who),
    "send": conversation("send"),
    "note": conversation("note"),
    "typing": conversation("typing"),
    "mark_read": conversation("mark_read"),
    "claim": lambda who: outcome(lambda: check_thread(who, CONV, "claim") and "ok"),
    "transfer": lambda who: outcome(lambda: check_thread(who, CONV, "transfer") and "ok"),
    "resolve": lambda who: outcome(lambda: check_thread(who, CONV, "resolve") and "ok"),
    "look is audited": lambda who: who is not None and audits_opening(who),
}

F, N, U = "forbidden", "not_found", "not_authenticated"
ALL = None  # audit scope: every entry
GM, BOTH, SS = (HERE,), (HERE, OTHER), (OTHER,)


def row(*cells: object) -> dict[str, object]:
    return dict(zip(PRINCIPALS, cells, strict=True))


EXPECTED: dict[str, dict[str, object]] = {
    #                         anon sup   sup_both sup_oth officer off_oth rel   rel_oth admin
    "audit.read":          row(U,  GM,   BOTH,    SS,     F,      F,      F,    F,      ALL),
    "audit.read here":     row(U,  GM,   GM,      F,      F,      F,      F,    F,      GM),
    "overview.read here":  row(U,  "ok", "ok",    F,      F,      F,      F,    F,      "ok"),
    "overview.read other": row(U,  F,    "ok",    "ok",   F,      F,      F,    F,      "ok"),
    "watch":               row(U,  "ok", "ok",    N,      "ok",   N,      "ok", N,      N),
    "read history":        row(U,  "ok", "ok",    N,      "ok",   N,      "ok", N,      N),
    "export record":       row(U,  "ok", "ok",    N,      "ok",   N,      "ok", N,      N),
    "record shows notes":  row(0,  1,    1,       1,      1,      1,      0,    0,      1),
    "send":                row(U,  F,    F,       N,      "ok",   N,      "ok", N,      N),
    "note":                row(U,  F,    F,       N,      "ok",   N,      F,    N,      N),
    "typing":              row(U,  F,    F,       N,      "ok",   N,      "ok", N,      N),
    "mark_read":           row(U,  F,    F,       N,      "ok",   N,      "ok", N,      N),
    "claim":               row(U,  F,    F,       N,      "ok",   N,      F,    N,      N),
    # the admin unsticks any thread (one held by an officer who left), without reading it
    "transfer":            row(U,  F,    F,       N,      "ok",   N,      F,    N,      "ok"),
    "resolve":             row(U,  F,    F,       N,      "ok",   N,      F,    N,      "ok"),
    "look is audited":     row(0,  1,    1,       1,      0,      0,      0,    0,      0),
}  # fmt: skip


@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_policy_matrix(action: str) -> None:
    got = {actor: ACTIONS[action](who) for actor, who in PRINCIPALS.items()}
    assert got == EXPECTED[action]


# over the wire: the same rules as users meet them

ACTORS = (
    "anonymous",
    "relative",
    "stranger",
    "officer",
    "officer_other",
    "supervisor",
    "supervisor_other",
    "admin",
)


def user(site: Site, actor: str) -> User | None:
    w, staff = site.world, site.staff
    return {
        "anonymous": None,
        "relative": w.relative,
        "stranger": w.stranger,
        "officer": w.officer,
        "officer_other": w.other_officer,
        "supervisor": w.supervisor,
        "supervisor_other": staff.other_supervisor,
        "admin": staff.admin,
    }[actor]


HTTP_EXPECTED: dict[str, tuple[int, ...]] = {
    # anonymous relative stranger officer off_oth supervisor sup_other admin
    "GET /audit": (401, 403, 403, 403, 403, 200, 200, 200),
    "GET /audit?prison=GM": (401, 403, 403, 403, 403, 200, 403, 200),
    "GET /audit/actors": (401, 403, 403, 403, 403, 200, 200, 200),  # whoever reads the trail
    "GET /audit/actors?prison=GM": (401, 403, 403, 403, 403, 200, 403, 200),
    "GET /overview?prison=GM": (401, 403, 403, 403, 403, 200, 403, 200),
    "GET /overview?prison=SS": (401, 403, 403, 403, 403, 403, 200, 200),
    "GET /conversations/A/export": (401, 200, 404, 200, 404, 200, 404, 404),
}


async def test_the_http_matrix(site: Site) -> None:
    gm, ss = site.world.gaoming.id, site.world.sanshui.id
    requests: dict[str, tuple[str, dict[str, Any]]] = {
        "GET /audit": ("/audit", {}),
        "GET /audit?prison=GM": ("/audit", {"prison": gm}),
        "GET /audit/actors": ("/audit/actors", {}),
        "GET /audit/actors?prison=GM": ("/audit/actors", {"prison": gm}),
        "GET /overview?prison=GM": ("/overview", {"prison": gm}),
        "GET /overview?prison=SS": ("/overview", {"prison": ss}),
        "GET /conversations/A/export": (f"/conversations/{site.world.conv.id}/export", {}),
    }
    got = {}
    for name, (path, params) in requests.items():
        statuses = []
        for actor in ACTORS:
            status, _ = await site.call("GET", path, user(site, actor), **params)
            statuses.append(status)
        got[name] = tuple(statuses)
    assert got == HTTP_EXPECTED


SOCKET_ACTORS = ("relative", "officer", "officer_other", "supervisor", "supervisor_other", "admin")
SOCKET_EXPECTED: dict[str, tuple[str, ...]] = {
    #            relative officer off_other supervisor sup_other admin
    "watch": ("ok", "ok", N, "ok", N, N),
    "send": ("ok", "ok", N, F, N, N),
    "note": (F, "ok", N, F, N, N),
    "read": ("ok", "ok", N, F, N, N),
}


async def socket_cell(site: Site, actor: str, action: str, n: int) -> str:
    """Do ``action`` on conversation A as ``actor``; "ok" or the error code answered."""
    who = user(site, actor)
    assert who is not None
    conv = site.world.conv.id
    ws = await raw(site.ws, site.world.token(who))
    try:
        if action == "watch":
            frame: dict[str, Any] = {"type": "watch", "conv": conv, "after": 0}
        elif action in ("send", "note"):
            kind = "note" if action == "note" else "text"
            frame = {"type": "send", "conv": conv, "cid": f"m{n}", "body": "hi", "kind": kind}
        else:
            frame = {"type": "read", "conv": conv, "seq": 1}
        await ws.send(json.dumps(frame))
        # a probe answered after the action (one socket's frames are handled in order):
        # reaching its answer first means the action was accepted without an error
        await ws.send(json.dumps({"type": "typing"}))
        while True:
            answer = json.loads(await ws.recv())
            if answer["type"] == "error":
                return "ok" if answer["code"] == "invalid_frame" else str(answer["code"])
    finally:
        await ws.close()


async def test_the_socket_matrix_and_what_each_action_leaves_behind(site: Site) -> None:
    w = site.world
    await site.store.append_messages([NewMessage(w.conv.id, w.relative.id, "relative", "q", "?")])
    got: dict[str, tuple[str, ...]] = {}
    n = 0
    for action in SOCKET_EXPECTED:
        cells = []
        for actor in SOCKET_ACTORS:
            n += 1
            cells.append(await socket_cell(site, actor, action, n))
        got[action] = tuple(cells)
    assert got == SOCKET_EXPECTED
    # only the supervisor's watch was audited; only those allowed left a read mark
    opened = await site.opened()
    assert [(e["actor"]["id"], e["object_id"]) for e in opened] == [(w.supervisor.id, w.conv.id)]
    assert await read_cursors(site.store, w.conv.id) == {w.relative.id: 1, w.officer.id: 1}
    senders = {
        m.sender_id for m in await messages.messages(site.store, w.conv.id, after=0, limit=100)
    }
    assert senders == {w.relative.id, w.officer.id}


async def test_only_an_officer_of_the_prison_claims_over_rest(site: Site) -> None:
    w = site.world
    await site.store.append_messages(
        [NewMessage(w.conv.id, w.relative.id, "relative", "q", "a question")]
    )
    path = f"/conversations/{w.conv.id}/claim"
    await desk.change_duty(site.store, w.officer.id, [w.gaoming.id], True, utcnow())  # else 409
    got = {}
    for actor in ACTORS:  # denials are the policy's, decided before the thread's state
        who = user(site, actor)
        if who is None:
            status = (await site.call("POST", path))[0]
        else:
            status = (await site.post(path, who))[0]
        got[actor] = status
    #                  anonymous relative stranger officer off_oth supervisor sup_other admin
    assert tuple(got.values()) == (401, 403, 404, 200, 404, 403, 404, 404)
