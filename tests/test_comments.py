"""Comments on announcements (issue 16), over real HTTP on PostgreSQL: a verified relative
comments, only it sees the pending comment, an officer of the prison approves it (audited)
and everyone then reads it; the bureau figures count it. The store on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import audit_trail, comments, figures
from storage.announcements import NewAnnouncement, post
from storage.audit_trail import TrailQuery
from storage.sql import Database
from tests.test_desk import Site, site  # noqa: F401 (the fixture)
from tests.world import seed, seed_staff

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


async def test_a_comment_is_shown_to_others_only_once_approved(site: Site) -> None:  # noqa: F811
    w = site.world
    staff = await seed_staff(site.store, w)
    news = await post(
        site.store,
        NewAnnouncement(
            author_id=w.officer.id, title="Open day", body="Saturday", prison_id=w.gaoming.id
        ),
        now=datetime.now(UTC),
    )
    path = f"/announcements/{news.id}/comments"
    status, got = await site.call("POST", path, w.stranger, {"body": "Hello"})
    assert (status, got["error"]["code"]) == (403, "forbidden")  # not verified for anyone
    status, got = await site.call("POST", path, w.officer, {"body": "Hello"})
    assert (status, got["error"]["code"]) == (403, "forbidden")  # staff do not comment
    status, got = await site.call("POST", path, w.relative, {"body": "  "})
    assert (status, got["error"]["code"]) == (400, "invalid_request")
    status, got = await site.call("POST", path, w.relative, {"body": "x" * 501})
    assert (status, got["error"]["field"]) == (400, "body")
    status, mine = await site.call("POST", path, w.relative, {"body": "谢谢通知！"})
    assert (status, mine["state"], mine["own"], mine["author"]) == (
        201,
        "pending",
        True,
        "Chen Mei",
    )

    status, got = await site.call("GET", path, w.relative)
    assert [(c["id"], c["state"]) for c in got["items"]] == [(mine["id"], "pending")]
    for other in (w.relative_b, None, w.supervisor):
        status, got = await site.call("GET", path, other)
        assert (status, got["items"]) == (200, [])
    status, queue = await site.call("GET", "/comments", w.officer)
    assert [c["id"] for c in queue["items"]] == [mine["id"]]
    status, got = await site.call("GET", "/comments", w.other_officer)  # another prison's
    assert (status, got["items"]) == (200, [])
    status, got = await site.call("GET", "/comments", w.relative)
    assert status == 403
    status, got = await site.call("POST", f"/comments/{mine['id']}/approve", w.other_officer)
    assert status == 404
    status, got = await site.call("POST", f"/comments/{mine['id']}/approve", w.supervisor)
    assert status == 403
    status, got = await site.call("POST", f"/comments/{mine['id']}/approve", w.officer)
    assert (status, got["state"]) == (200, "approved")
    status, got = await site.call("POST", f"/comments/{mine['id']}/reject", staff.admin)
    assert (status, got["error"]["code"]) == (409, "conflict")
    [entry] = await audit_trail.entries(site.store, TrailQuery(action="comment.approved"))
    assert entry.actor is not None and entry.actor.id == w.officer.id
    assert (entry.before, entry.after) == ({"state": "pending"}, {"state": "approved"})

    status, got = await site.call("GET", path)
    assert [(c["body"], c["author"], c["own"]) for c in got["items"]] == [
        ("谢谢通知！", "C*******", False)
    ]
    # a rejected one stays its author's alone
    status, second = await site.call("POST", path, w.relative_b, {"body": "广告"})
    status, got = await site.call("POST", f"/comments/{second['id']}/reject", staff.admin)
    assert (status, got["state"]) == (200, "rejected")
    status, got = await site.call("GET", path, w.relative)
    assert [c["id"] for c in got["items"]] == [mine["id"]]
    status, got = await site.call("GET", path, w.relative_b)
    assert [c["id"] for c in got["items"]] == [mine["id"], second["id"]]

    status, bureau = await site.call("GET", "/stats/bureau", staff.admin)
    today = bureau["days"][-1]
    assert (today["comments"], today["comments_approved"]) == (2, 1)
    status, got = await site.call("GET", "/announcements/999999/comments")
    assert status == 404


async def test_comments_store_on_both_databases(store: Database) -> None:
    w = await seed(store)
    bureau = await post(store, NewAnnouncement(author_id=w.officer.id, title="T", body="B"), now=T0)
    made = await comments.post(store, bureau.id, w.relative.id, "好", T0)
    assert (made.state, made.prison_id, made.author_name) == ("pending", None, "Chen Mei")
    seen = await comments.of_announcement(
        store, bureau.id, viewer_id=w.relative_b.id, everything=False
    )
    assert seen == []
    assert [c.id for c in await comments.moderation_queue(store, None)] == [made.id]
    assert await comments.moderation_queue(store, [w.gaoming.id]) == []  # bureau-wide: admin's
    decided = await comments.decide(
        store, made.id, "approved", w.officer.id, T0 + timedelta(hours=1)
    )
    assert decided.state == "approved" and decided.decided_at == T0 + timedelta(hours=1)
    seen = await comments.of_announcement(store, bureau.id, viewer_id=None, everything=False)
    assert [c.id for c in seen] == [made.id]
    days = await figures.bureau_figures(store, T0.date(), T0.date(), UTC, T0 + timedelta(hours=2))
    assert (days[0].comments, days[0].comments_approved) == (1, 1)
