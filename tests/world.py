"""A small seeded world for the real-time and policy tests, with session tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.records import Conversation, Prison, User
from server import sessions
from storage import accounts, conversations, links, prisons
from storage.sql import Database


@dataclass
class World:
    gaoming: Prison
    sanshui: Prison
    officer: User  # of Gaoming
    other_officer: User  # of Sanshui
    supervisor: User  # of Gaoming
    relative: User  # verified for inmate A (Gaoming)
    relative_b: User  # verified for inmate B (Gaoming)
    stranger: User  # a relative with no verified link
    conv: Conversation  # relative <-> Gaoming about inmate A
    conv_b: Conversation  # relative_b <-> Gaoming about inmate B
    extra_officers: list[User] = field(default_factory=list)  # more officers of Gaoming
    tokens: dict[str, str] = field(default_factory=dict)  # login -> session token

    def token(self, user: User) -> str:
        return self.tokens[user.login]


async def seed(store: Database, extra_officers: int = 0) -> World:
    gaoming = await prisons.add_prison(store, "GM", "Gaoming Prison", "Foshan")
    sanshui = await prisons.add_prison(store, "SS", "Sanshui Prison", "Foshan")
    officer = await accounts.add_user(
        store, "officer", "officer.li", "Officer Li", "x", [gaoming.id]
    )
    other = await accounts.add_user(
        store, "officer", "officer.zhao", "Officer Zhao", "x", [sanshui.id]
    )
    supervisor = await accounts.add_user(
        store, "supervisor", "sup.wang", "Wang Fang", "x", [gaoming.id]
    )
    relative = await accounts.add_user(store, "relative", "13800000001", "Chen Mei", "x")
    relative_b = await accounts.add_user(store, "relative", "13800000002", "Huang Lan", "x")
    stranger = await accounts.add_user(store, "relative", "13800000003", "Stranger", "x")
    inmate_a = await prisons.add_inmate(store, gaoming.id, "GM-001", "Chen Jian")
    inmate_b = await prisons.add_inmate(store, gaoming.id, "GM-002", "Huang Bo")
    for who, inmate in ((relative, inmate_a), (relative_b, inmate_b)):
        link = await links.request_link(store, who.id, inmate.id, "mother", "household register")
        await links.decide_link(store, link, "verified", officer.id, None)
    conv = await conversations.open_conversation(store, relative.id, inmate_a.id)
    conv_b = await conversations.open_conversation(store, relative_b.id, inmate_b.id)
    world = World(
        gaoming, sanshui, officer, other, supervisor, relative, relative_b, stranger, conv, conv_b
    )
    for n in range(extra_officers):
        world.extra_officers.append(
            await accounts.add_user(
                store, "officer", f"officer.{n}", f"Officer {n}", "x", [gaoming.id]
            )
        )
    for user in [officer, other, supervisor, relative, relative_b, stranger, *world.extra_officers]:
        world.tokens[user.login] = await sessions.issue(store, user, days=1)
    return world


@dataclass
class Staff:
    """The staff the policy matrix needs beyond ``World``: a supervisor of Sanshui, an admin."""

    other_supervisor: User
    admin: User


async def seed_staff(store: Database, world: World) -> Staff:
    other = await accounts.add_user(
        store, "supervisor", "sup.sun", "Sun Li", "x", [world.sanshui.id]
    )
    admin = await accounts.add_user(store, "admin", "admin.he", "He Ping", "x")
    for user in (other, admin):
        world.tokens[user.login] = await sessions.issue(store, user, days=1)
    return Staff(other, admin)


async def read_cursors(db: Database, conversation_id: int) -> dict[int, int]:
    """Each reader's stored cursor in the conversation (user id -> last seq read): what the
    tests check ``messages.mark_read`` and the socket's ``read`` by; the service itself reads
    cursors only inside its queries (the desk's unread counts, the outbox)."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT user_id, seq FROM read_cursors WHERE conversation_id = $1", conversation_id
        )
    return {r["user_id"]: r["seq"] for r in rows}
