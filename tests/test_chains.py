"""The hash chains on both databases: hashed as stored, recomputed by verify, broken by tampering.

PostgreSQL hashes in SQL (migration 0014) and SQLite through ``domain.chain``: both must give
the bytes that Python's ``json.dumps(ensure_ascii=False, sort_keys=True, separators=(",",
":"))`` gives, which this file checks with bodies chosen to differ if any escaping differed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from domain import chain
from domain.records import NewMessage
from storage import audit_trail, chain_anchors, chains, retention
from storage.sql import Database, utcnow
from tests.tamper import triggers_off
from tests.world import seed

TRICKY = [
    'quotes " and \' and backslash \\ and \\"',
    "newline\nreturn\rtab\tbackspace\bformfeed\f",
    "control \x01\x02\x1f and DEL \x7f",
    "家属你好，请问会见时间？",
    "emoji 😀👨‍👩‍👧 and a lone BMP char \u00e9",
    "line separators \u2028 and \u2029, nbsp \u00a0, bom \ufeff",
    "</script><b>&amp;</b>",
    "",
]


def python_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


async def test_stored_hashes_follow_the_python_canonical_form(store: Database) -> None:
    w = await seed(store)
    r = w.relative
    results = await store.append_messages(
        [NewMessage(w.conv.id, r.id, "relative", f"t{n}", body) for n, body in enumerate(TRICKY)]
    )
    async with store.read() as sql:
        found = await chains.conversation_chain(sql, w.conv.id)
        head = await sql.fetchval("SELECT chain_head FROM conversations WHERE id = $1", w.conv.id)
    assert [m.body for m in found] == TRICKY
    previous = bytes(32)
    for message, appended in zip(found, results, strict=True):
        assert appended is not None
        # at_us is the stored timestamp, exactly
        assert message.at_us == chain.at_us(appended.message.created_at)
        text = python_json(
            {
                "at_us": message.at_us,
                "body": message.body,
                "conv": w.conv.id,
                "kind": "text",
                "sender": r.id,
                "seq": message.seq,
            }
        )
        assert message.form() == text.encode()
        previous = hashlib.sha256(previous + text.encode()).digest()
        assert message.hash == previous
    assert bytes(head) == previous


async def test_audit_entries_are_chained_whoever_inserts_them(store: Database) -> None:
    w = await seed(store)
    tricky = {"note": TRICKY[0] + TRICKY[1] + TRICKY[4] + TRICKY[5], "n": 3, "ok": True}
    nested = {"z": [1, "二", None, {"b": 2, "a": 1}], "a": {"é": 1, "e": 2}, "empty": {}}
    async with store.write() as sql:
        await audit_trail.record(
            sql,
            at=utcnow(),
            actor_id=w.officer.id,
            action="test.tricky",
            object_type="test",
            object_id=None,
            prison_id=w.gaoming.id,
            before=tricky,
            after=nested,
        )
    # an officer's reply claims the thread: the trigger of migration 0007 writes that entry
    await store.append_messages([NewMessage(w.conv.id, w.relative.id, "relative", "q", "?")])
    await store.append_messages([NewMessage(w.conv.id, w.officer.id, "officer", "a", "!")])
    async with store.read() as sql:
        rows = await sql.fetch(
            "SELECT id, at, actor_id, action, object_type, object_id, prison_id, before, after,"
            " chain_n, hash FROM audit_entries ORDER BY chain_n"
        )
        previous = bytes(32)
        for n, row in enumerate(rows, start=1):
            assert row["chain_n"] == n
            text = python_json(
                {
                    "action": row["action"],
                    "actor_id": row["actor_id"],
                    "after": sql.unjson(row["after"]),
                    "at_us": chain.at_us(sql.when(row["at"])),
                    "before": sql.unjson(row["before"]),
                    "id": row["id"],
                    "object_id": row["object_id"],
                    "object_type": row["object_type"],
                    "prison_id": row["prison_id"],
                }
            )
            previous = hashlib.sha256(previous + text.encode()).digest()
            assert bytes(row["hash"]) == previous, row["action"]
    assert [r["action"] for r in rows][-1] == "conversation.claimed"
    assert sql.unjson(rows[0]["before"]) == tricky
    verdict = await chains.verify(store)
    assert verdict.broken is None and verdict.audit_entries == len(rows)


async def test_verify_accepts_a_purged_message_and_checks_the_next_link(store: Database) -> None:
    w = await seed(store)
    r = w.relative
    await store.append_messages(
        [NewMessage(w.conv.id, r.id, "relative", f"c{n}", f"question {n}") for n in (1, 2)]
    )
    cutoff = utcnow()
    await store.append_messages([NewMessage(w.conv.id, r.id, "relative", "c3", "kept")])
    assert await retention.purge(store, cutoff, utcnow()) == 2
    verdict = await chains.verify(store)
    assert verdict.broken is None and verdict.messages == 3
    async with triggers_off(
        store, "messages"
    ) as sql:  # a purged message's hash is still linked to the next
        await sql.execute(
            "UPDATE messages SET hash = $1 WHERE conversation_id = $2 AND seq = 2",
            bytes(32),
            w.conv.id,
        )
    assert (await chains.verify(store)).broken == (
        f"conversation {w.conv.id} seq 3: hash does not match its content and the previous hash"
    )


async def test_an_anchor_is_taken_once_a_day_and_published_digest_is_recomputable(
    store: Database,
) -> None:
    w = await seed(store)
    await store.append_messages([NewMessage(w.conv.id, w.relative.id, "relative", "q", "?")])
    now = utcnow()
    taken, created = await chain_anchors.anchor(store, now)
    again, created_again = await chain_anchors.anchor(store, now + timedelta(seconds=5))
    assert created and not created_again and again == taken and taken.day == now.date()
    async with store.read() as sql:
        head = bytes(
            await sql.fetchval("SELECT chain_head FROM conversations WHERE id = $1", w.conv.id)
        )
        stored = await sql.fetchval("SELECT head FROM audit_chain")
    audit = bytes(32) if stored is None else bytes(stored)  # no audit entry yet: h_0
    lines = f"{w.conv.id}:{head.hex()}\naudit:{audit.hex()}\n"
    assert taken.digest == hashlib.sha256(lines.encode()).hexdigest()
    assert await chain_anchors.anchors(store) == [taken]
    # later messages move the heads; the anchor still verifies at the positions it covers
    await store.append_messages([NewMessage(w.conv.id, w.relative.id, "relative", "q2", "?")])
    assert (await chains.verify(store)).broken is None


REPO = Path(__file__).resolve().parent.parent


def url_of(store: Database, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of the ``store`` fixture's database, as an operator would configure it."""
    if store.dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'kinline.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


async def kinline(url: str, command: str = "verify") -> subprocess.CompletedProcess[str]:
    """``kinline verify`` (or another command) as an operator runs it: a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINLINE_")}
    env["PYTHONPATH"] = str(REPO)
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "--database-url", url, command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.spawns
async def test_kinline_verify_passes_then_names_the_first_altered_record(
    store: Database, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    w = await seed(store)
    url = url_of(store, request, tmp_path)
    await store.append_messages(
        [NewMessage(w.conv.id, w.relative.id, "relative", f"c{n}", f"question {n}") for n in (1, 2)]
    )
    await store.append_messages([NewMessage(w.conv.id, w.officer.id, "officer", "a", "answer")])
    [claim] = await audit_trail.audit_entries(store, action="conversation.claimed")
    passed = await kinline(url)
    assert passed.returncode == 0, passed.stderr
    assert "every chain holds: 3 messages" in passed.stdout

    with pytest.raises(Exception, match="kept as written"):  # the service's own rule
        async with store.write() as sql:
            await sql.execute(
                "UPDATE messages SET body = 'x' WHERE conversation_id = $1", w.conv.id
            )
    with pytest.raises(Exception, match="kept as written"):
        async with store.write() as sql:
            await sql.execute("DELETE FROM messages WHERE conversation_id = $1", w.conv.id)
    async with triggers_off(store, "messages") as sql:  # one word of one message changed
        await sql.execute(
            "UPDATE messages SET body = 'question 2, edited' WHERE conversation_id = $1"
            " AND seq = 2",
            w.conv.id,
        )
    failed = await kinline(url)
    assert failed.returncode == 1
    assert failed.stderr.startswith(
        f"kinline: verify: broken: conversation {w.conv.id} seq 2: hash does not match"
    )
    async with triggers_off(store, "messages") as sql:
        await sql.execute(
            "UPDATE messages SET body = 'question 2' WHERE conversation_id = $1 AND seq = 2",
            w.conv.id,
        )
    assert (await kinline(url)).returncode == 0

    # the audit trail refuses UPDATE: with its triggers off, the chain still tells
    async with triggers_off(store, "audit_entries") as sql:
        await sql.execute(
            "UPDATE audit_entries SET actor_id = $1 WHERE id = $2", w.relative.id, claim.id
        )
    failed = await kinline(url)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"kinline: verify: broken: audit id {claim.id}: hash")


async def test_a_history_rewritten_with_recomputed_hashes_no_longer_matches_its_anchor(
    store: Database,
) -> None:
    w = await seed(store)
    await store.append_messages(
        [NewMessage(w.conv.id, w.relative.id, "relative", f"c{n}", f"question {n}") for n in (1, 2)]
    )
    saved, _ = await chain_anchors.anchor(store, utcnow())  # as someone kept it, published

    # rewrite message 1 and recompute every hash after it and the head: the chain holds...
    async with triggers_off(store, "messages") as sql:
        await sql.execute(
            "UPDATE messages SET body = 'a different question' WHERE conversation_id = $1"
            " AND seq = 1",
            w.conv.id,
        )
        previous = chain.GENESIS
        for message in await chains.conversation_chain(sql, w.conv.id):
            previous = chain.step(previous, message.form())
            await sql.execute(
                "UPDATE messages SET hash = $1 WHERE conversation_id = $2 AND seq = $3",
                previous,
                w.conv.id,
                message.seq,
            )
        await sql.execute(
            "UPDATE conversations SET chain_head = $1 WHERE id = $2", previous, w.conv.id
        )
    # ...but not the anchor kept in the database
    assert (await chains.verify(store)).broken == (
        f"anchor {saved.day}: digest does not match the chains"
    )
    # and one who also rewrites the kept anchor still differs from the one published
    async with triggers_off(store, "chain_anchors") as sql:
        await sql.execute("DELETE FROM chain_anchors")
    forged, created = await chain_anchors.anchor(store, utcnow())
    assert created and (await chains.verify(store)).broken is None
    async with store.read() as sql:  # the forged anchor covers the very same positions
        heads = [sql.unjson(r["heads"]) for r in await sql.fetch("SELECT heads FROM chain_anchors")]
    assert heads == [{str(w.conv.id): 2}]
    assert forged.day == saved.day and forged.digest != saved.digest


@pytest.mark.spawns
async def test_kinline_anchor_takes_the_days_anchor_once(
    store: Database, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    w = await seed(store)
    url = url_of(store, request, tmp_path)
    await store.append_messages([NewMessage(w.conv.id, w.relative.id, "relative", "q", "?")])
    first = await kinline(url, "anchor")
    again = await kinline(url, "anchor")
    [kept] = await chain_anchors.anchors(store)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert first.stdout.strip() == f"took the anchor of {kept.day}: {kept.digest}"
    assert again.stdout.strip() == f"kept the anchor of {kept.day}: {kept.digest}"
    passed = await kinline(url)
    assert passed.returncode == 0 and "1 anchors" in passed.stdout


async def test_verify_tells_a_removed_message_or_audit_entry(store: Database) -> None:
    w = await seed(store)
    await store.append_messages(
        [NewMessage(w.conv.id, w.relative.id, "relative", f"c{n}", f"q{n}") for n in (1, 2, 3)]
    )
    async with triggers_off(store, "messages") as sql:
        await sql.execute("DELETE FROM messages WHERE conversation_id = $1 AND seq = 2", w.conv.id)
    assert (await chains.verify(store)).broken == f"conversation {w.conv.id} seq 2: missing"
    async with triggers_off(store, "messages") as sql:
        await sql.execute("DELETE FROM messages WHERE conversation_id = $1 AND seq = 3", w.conv.id)
    assert (await chains.verify(store)).broken == (
        f"conversation {w.conv.id}: head does not match its last message"
    )
    for n in (1, 2):
        await audit_trail.append(
            store,
            at=utcnow(),
            actor_id=w.officer.id,
            action=f"test.step{n}",
            object_type="test",
            object_id=n,
            prison_id=w.gaoming.id,
        )
    entries = await audit_trail.audit_entries(store)  # newest first
    async with store.write() as sql:  # the conversation made whole again (1 message)
        await sql.execute(
            "UPDATE conversations SET last_seq = 1, chain_head = (SELECT hash FROM messages"
            " WHERE conversation_id = $1 AND seq = 1) WHERE id = $1",
            w.conv.id,
        )
    assert (await chains.verify(store)).broken is None  # a cut tail: only an anchor tells
    async with triggers_off(store, "audit_entries") as sql:
        await sql.execute("DELETE FROM audit_entries WHERE id = $1", entries[-1].id)
    assert (await chains.verify(store)).broken == "audit chain position 1: missing"


async def test_postgres_forms_equal_python_forms_with_attachments_and_nested_json(
    pg_store: Database,
) -> None:
    """The SQL forms the hot path uses, against ``domain.chain``, for every tricky body, with
    and without attachments (which ``kinline_message_form`` takes for when messages have
    files), and ``kinline_json`` on nested values."""
    files = ["AB" * 32, "0f" * 32]
    async with pg_store.read() as sql:
        for body in TRICKY:
            for attached in ([], files):
                text = await sql.fetchval(
                    "SELECT convert_from(kinline_message_form($1, $2, $3, $4, $5, $6, $7), 'UTF8')",
                    1_765_000_000_123_456,
                    body,
                    7,
                    "text",
                    42,
                    3,
                    attached,
                )
                assert text.encode() == chain.message_form(
                    at_us=1_765_000_000_123_456,
                    body=body,
                    conv=7,
                    kind="text",
                    sender=42,
                    seq=3,
                    attachments=attached,
                )
        value = {"z": [1, "二", None, {"b": TRICKY[1], "a": True}], "é": {}, "e": [], "a": 1.5}
        assert await sql.fetchval("SELECT kinline_json($1)", value) == python_json(value)
