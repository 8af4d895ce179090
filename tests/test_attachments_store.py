"""``storage/attachments.py`` on both databases: a file bound to a message key is recorded as
the message's by migration 0018's trigger in the append's own transaction; evidence binds
inside the link request's transaction; unsent uploads and a purged message's files go to the
trash, then are forgotten once the object store deleted them."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from domain import chain
from domain.records import Attachment, LinkClaim, NewMessage
from storage import (
    attachments,
    chains,
    conversation_export,
    links,
    messages,
    prisons,
    retention,
)
from storage.errors import NotFound
from storage.sql import Database, utcnow
from tests.tamper import triggers_off
from tests.world import World, seed


async def upload(store: Database, owner: int, n: int) -> Attachment:
    return await attachments.add(
        store,
        owner_id=owner,
        content_type="image/jpeg",
        name=f"p{n}.jpg",
        size=100 + n,
        sha256=f"{n:064x}",
        object_key=f"a/00/{n:032x}",
        thumb_key=f"t/00/{n:032x}",
        width=4,
        height=3,
        now=utcnow(),
    )


async def send(store: Database, w: World, cid: str, files: tuple[Attachment, ...]) -> int:
    r = w.relative
    [appended] = await store.append_messages(
        [NewMessage(w.conv.id, r.id, "relative", cid, "", "text", r.name, files)]
    )
    assert appended is not None
    return appended.message.id


async def test_a_bound_file_becomes_its_messages_in_the_append(store: Database) -> None:
    w = await seed(store)
    one, two, theirs = (
        await upload(store, w.relative.id, 1),
        await upload(store, w.relative.id, 2),
        await upload(store, w.relative_b.id, 3),
    )
    bound = await attachments.bind_to_message(
        store, [two.id, one.id], owner_id=w.relative.id, conversation_id=w.conv.id, cid="c1"
    )
    assert [a.id for a in bound] == [one.id, two.id]  # upload order
    with pytest.raises(NotFound):  # someone else's: nothing bound
        await attachments.bind_to_message(
            store, [theirs.id], owner_id=w.relative.id, conversation_id=w.conv.id, cid="c1"
        )
    message_id = await send(store, w, "c1", bound)
    [page] = await messages.messages(store, w.conv.id)
    assert page.id == message_id and [a.id for a in page.attachments] == [one.id, two.id]
    assert (await attachments.attachment(store, one.id)).message_id == message_id
    # the same key again binds the same files; another message may not take them
    again = await attachments.bind_to_message(
        store, [one.id], owner_id=w.relative.id, conversation_id=w.conv.id, cid="c1"
    )
    assert [a.id for a in again] == [one.id]
    with pytest.raises(NotFound):
        await attachments.bind_to_message(
            store, [one.id], owner_id=w.relative.id, conversation_id=w.conv.id, cid="c2"
        )
    assert await attachments.usage(store, w.relative.id) == 101 + 102


async def test_evidence_binds_with_its_request_or_not_at_all(store: Database) -> None:
    w = await seed(store)
    inmate = await prisons.add_inmate(store, w.gaoming.id, "GM-100", "Li Wei")
    mine, theirs = await upload(store, w.stranger.id, 1), await upload(store, w.relative.id, 2)
    claim = LinkClaim(w.stranger.id, "GM", "GM-100", "wife", "", w.gaoming.id, inmate.id)
    with pytest.raises(NotFound):
        await links.claim_link(store, claim, [mine.id, theirs.id])
    assert await links.links(store, relative_id=w.stranger.id) == []  # rolled back whole
    link = await links.claim_link(store, claim, [mine.id])
    found = await attachments.of_links(store, [link.id])
    assert [a.id for a in found[link.id]] == [mine.id]


async def test_unsent_and_purged_files_go_to_the_trash_then_are_forgotten(
    store: Database,
) -> None:
    w = await seed(store)
    sent, unsent = await upload(store, w.relative.id, 1), await upload(store, w.relative.id, 2)
    bound = await attachments.bind_to_message(
        store, [sent.id], owner_id=w.relative.id, conversation_id=w.conv.id, cid="c1"
    )
    await send(store, w, "c1", bound)
    later = utcnow() + timedelta(days=2)
    assert await attachments.discard_unsent(store, later - timedelta(hours=24), later) == 1
    assert sorted(await attachments.trash(store)) == sorted(
        [unsent.object_key, str(unsent.thumb_key)]
    )
    await attachments.forget_trash(store, await attachments.trash(store))
    assert await attachments.trash(store) == []
    assert await retention.purge(store, later, later) == 1
    assert sorted(await attachments.trash(store)) == sorted([sent.object_key, str(sent.thumb_key)])
    with pytest.raises(NotFound):
        await attachments.attachment(store, sent.id)
    [purged] = await messages.messages(store, w.conv.id)
    assert purged.attachments == ()


async def test_the_hash_chain_includes_each_messages_files(store: Database) -> None:
    """DESIGN.md section 9: C(m) has "attachments": [hex sha256, ...] when a message has files;
    the chain holds, recomputed from the rows alone, and a file's hash changed behind the
    service's back breaks it at that message."""
    w = await seed(store)
    await send(store, w, "plain", ())
    one, two = await upload(store, w.relative.id, 1), await upload(store, w.relative.id, 2)
    bound = await attachments.bind_to_message(
        store, [one.id, two.id], owner_id=w.relative.id, conversation_id=w.conv.id, cid="c1"
    )
    await send(store, w, "c1", bound)
    await send(store, w, "after", ())
    verdict = await chains.verify(store)
    assert verdict.broken is None and verdict.messages == 3
    record = await conversation_export.conversation_record(store, w.conv.id, with_notes=True)
    with_files = record.messages[1]
    assert with_files.attachments == [one.sha256, two.sha256]
    assert record.messages[0].attachments is msgspec.UNSET
    # the outside check: the record's own hashes recomputed from what it lists
    previous = chain.GENESIS
    for m in record.messages:
        assert isinstance(m.at_us, int) and isinstance(m.body, str)
        assert isinstance(m.sender, int)
        form = chain.message_form(
            at_us=m.at_us,
            body=m.body,
            conv=w.conv.id,
            kind=m.kind,
            sender=m.sender,
            seq=m.seq,
            attachments=[] if m.attachments is msgspec.UNSET else m.attachments,
        )
        previous = chain.step(previous, form)
        assert previous.hex() == m.hash
    async with triggers_off(store, "attachments") as sql:
        await sql.execute("UPDATE attachments SET sha256 = $1 WHERE id = $2", "f" * 64, two.id)
    broken = await chains.verify(store)
    assert broken.broken is not None and f"conversation {w.conv.id} seq 2" in broken.broken
