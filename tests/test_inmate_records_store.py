"""``storage/inmate_records.py`` on both databases (SQLite and PostgreSQL): the dry run rolls
back everything, the applied import writes the same plan, a transfer moves links and threads,
a release ends the links and stores one notice per relative."""

from __future__ import annotations

from datetime import UTC, datetime

from storage import accounts, conversations, inmate_records, links, prisons
from storage.inmate_records import CsvLine, parse_csv
from storage.sql import Database

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


async def test_register_on_both_databases(store: Database) -> None:
    gm = await prisons.add_prison(store, "GM", "Gaoming")
    ss = await prisons.add_prison(store, "SS", "Sanshui")
    admin = await accounts.add_user(store, "admin", "admin", "Admin", "x")
    relative = await accounts.add_user(store, "relative", "13800000001", "Mei", "x")
    lines = parse_csv("\ufeffnumber,name\nGM-1,Chen\nGM-2,Huang\n".encode())
    assert lines == [CsvLine(2, "GM-1", "Chen"), CsvLine(3, "GM-2", "Huang")]
    dry = await inmate_records.import_inmates(
        store, gm.id, lines, apply=False, actor_id=admin.id, now=NOW
    )
    assert (dry.applied, dry.added) == (False, 2)
    assert await inmate_records.register(store) == []
    done = await inmate_records.import_inmates(
        store, gm.id, lines, apply=True, actor_id=admin.id, now=NOW
    )
    assert done.added == 2
    chen = await prisons.inmate_by_number(store, gm.id, "GM-1")
    assert chen is not None
    link = await links.request_link(store, relative.id, chen.id, "mother", "")
    await links.decide_link(store, link, "verified", admin.id, None)
    conv = await conversations.open_conversation(store, relative.id, chen.id)

    moved = await inmate_records.transfer(store, chen.id, ss.id, actor_id=admin.id, now=NOW)
    assert (moved.from_prison, moved.relatives, moved.conversations) == (
        gm.id,
        [relative.id],
        [conv.id],
    )
    assert (await conversations.conversation(store, conv.id)).prison_id == ss.id
    assert (await links.link(store, link)).prison_id == ss.id

    ended = await inmate_records.end(store, chen.id, "archived", actor_id=admin.id, now=NOW)
    assert [(ln.id, ln.state) for ln in ended.links] == [(link, "revoked")]
    assert [n.kind for n in await inmate_records.notices(store, relative.id)] == [
        "archived",
        "transferred",
    ]
    assert (await inmate_records.registered(store, chen.id)).status == "archived"
