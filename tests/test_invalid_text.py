"""Text no database can store is refused where it enters, with ``invalid_text``.

Regression (issue 12, item 3): PostgreSQL refuses U+0000 (NUL). Over REST, NUL in any stored
text field (register, links, complaints, canned replies, announcements, prisons, inmate
cards...) was a 500; over the socket, one relative's NUL failed the group-commit batch it
shared with other senders, so their sends failed with ``internal``.

The REST cases are generated from ``GET /api/v1/openapi.json`` like those of
``test_api_input_bounds.py``: every string of every query and body (through nested objects and
arrays), sent with a NUL in it by an admin, an officer, a verified relative and anonymously, on
SQLite and on PostgreSQL. No answer may be a 5xx; a string without a pattern must be answered
400 ``invalid_text`` naming the field by at least one caller that gets past the policy (a
string with a pattern may instead fail the pattern: 400 ``invalid_request``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from channels.protocol import INVALID_TEXT, ProtocolError, Send, decode_client
from storage import accounts, conversations, links, messages, prisons
from storage.postgres import PostgresDatabase
from tests.test_api_input_bounds import (
    ACTORS,
    Target,
    _fill,
    _names,
    _options,
    _spec,
    target,
)
from tests.test_realtime import Live, live, raw, recv
from tests.test_visits import HTTP_RULES, ask, slot

__all__ = ["live", "target"]  # fixtures, used by name

NUL = "x\u0000y"

# A value for each anchored pattern of the API (the others are ``\S``: any NUL value fits).
SAMPLES = {
    r"^[a-z0-9][a-z0-9._-]{2,39}$": "nul.case",
    r"^[A-Z0-9][A-Z0-9-]{0,19}$": "NUL1",
    r"^\+?[0-9]{6,20}$": "13800000777",
    r"^[0-9A-Za-z][0-9A-Za-z -]{4,30}[0-9A-Za-z]$": "440101199001011234",
}  # any other anchored pattern takes "x"


def _valid(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A value that passes decoding: the required fields of an object, filled in plainly
    (anchored patterns from ``SAMPLES``)."""
    option = _options(schema, spec)[0]
    if "enum" in option:
        return option["enum"][0]
    kind = option.get("type")
    if kind == "object":
        properties = option.get("properties", {})
        return {n: _valid(properties[n], spec) for n in option.get("required", [])}
    if kind == "integer":
        return option.get("minimum", 1)
    if kind == "string":
        if option.get("format") == "date":
            return "2030-01-01"
        if option.get("format") == "date-time":
            return "2030-01-01T10:00:00+08:00"
        if option.get("pattern", "").startswith("^"):
            return SAMPLES.get(option["pattern"], "x")
        return "x" * max(1, option.get("minLength", 1))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    raise AssertionError(f"no plain value for {option}")


def _with(
    schema: dict[str, Any], spec: dict[str, Any], at: tuple[str | int, ...], value: Any
) -> Any:
    """A valid value of ``schema`` with ``value`` put at ``at``."""
    if not at:
        return value
    step, rest = at[0], at[1:]
    for option in _options(schema, spec):
        if isinstance(step, int) and option.get("type") == "array":
            return [_with(option["items"], spec, rest, value)]
        properties = option.get("properties", {})
        if isinstance(step, str) and step in properties:
            others = {k: v for k, v in _valid(option, spec).items() if k != step}
            return {step: _with(properties[step], spec, rest, value), **others}
    raise AssertionError(f"{at} is not in {schema}")


@dataclass(frozen=True)
class TextCase:
    method: str
    path: str
    field: str
    patterned: bool  # a pattern may refuse the value first (invalid_request)
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.field}"


def _strings(
    schema: dict[str, Any], spec: dict[str, Any], at: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], bool]]:
    """(path into the body, has a pattern) of every free-text string in ``schema``."""
    for option in _options(schema, spec):
        kind = option.get("type")
        if kind == "string" and "enum" not in option and "format" not in option:
            yield at, option.get("pattern", "").startswith("^")
        elif kind == "object":
            for name, inner in option.get("properties", {}).items():
                yield from _strings(inner, spec, (*at, name))
            extra = option.get("additionalProperties")
            if isinstance(extra, dict):
                yield from _strings(extra, spec, (*at, "*"))
        elif kind == "array" and "items" in option:
            yield from _strings(option["items"], spec, (*at, 0))


def _nul_value(schema: dict[str, Any], spec: dict[str, Any], at: tuple[str | int, ...]) -> str:
    """A NUL-bearing string as long as the leaf's minimum length asks."""
    for step in at:
        options = _options(schema, spec)
        for option in options:
            if isinstance(step, int) and option.get("type") == "array":
                schema = option["items"]
                break
            if isinstance(step, str) and step in option.get("properties", {}):
                schema = option["properties"][step]
                break
    least: int = _options(schema, spec)[0].get("minLength", 1)
    return NUL + "z" * max(0, least - len(NUL))


def text_cases(spec: dict[str, Any], ids: dict[str, int]) -> list[TextCase]:
    found: list[TextCase] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            filled = _fill(path, ids)
            for parameter in operation["parameters"]:
                if parameter["in"] != "query":
                    continue
                for at, patterned in _strings(parameter["schema"], spec):
                    assert not at
                    query = f"{parameter['name']}={quote(NUL, safe='')}"
                    found.append(
                        TextCase(method.upper(), f"{filled}?{query}", parameter["name"], patterned)
                    )
            body_schema = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            if body_schema is None:
                continue
            for at, patterned in _strings(body_schema, spec):
                if "*" in at:  # a free-form map: a NUL key as well as a NUL value
                    continue
                value = _nul_value(body_schema, spec, at)
                body = _with(body_schema, spec, at, value)
                dotted = ".".join(step for step in at if isinstance(step, str))
                found.append(TextCase(method.upper(), filled, dotted, patterned, body))
    return found


async def _create(target: Target, spec: dict[str, Any], path: str, body: Any) -> int:
    """An object made through ``POST path`` by whichever caller may, for the routes on it."""
    for actor in ACTORS:
        status, reply = await target.call("POST", path, actor, body)
        if status in (200, 201):
            return int(reply["id"])
    raise AssertionError(f"nobody could POST {path}")


def _body(spec: dict[str, Any], path: str) -> Any:
    schema = spec["paths"][f"/api/v1{path}"]["post"]["requestBody"]["content"]
    return _valid(schema["application/json"]["schema"], spec)


async def test_nul_in_any_rest_text_field_is_400_invalid_text(target: Target) -> None:
    spec = await _spec(target)
    ids = dict(target.ids)
    ids["canned"] = await _create(target, spec, "/canned", _body(spec, "/canned"))
    complaint = {
        **_body(spec, "/complaints"),
        "prison_id": target.ids["prisons"],
        "inmate_id": target.ids["inmates"],
    }
    ids["complaints"] = await _create(target, spec, "/complaints", complaint)
    status, _ = await target.call(
        "PUT", f"/prisons/{target.ids['prisons']}/visit-rules", "officer", HTTP_RULES
    )
    assert status == 200
    visit = ask(target.ids["inmates"], slot(2, "10:00"))
    ids["visits"] = await _create(target, spec, "/visits", visit)
    # an announcement to comment on (the comments routes look it up before the body)
    ids["announcements"] = await _create(
        target, spec, "/announcements", {**_body(spec, "/announcements"), "prison_id": None}
    )
    # a flagged message to review (the review route looks the flag up before the body)
    lists = {"lists": [{"category": "escape", "words": ["越狱"]}]}
    assert (await target.call("PUT", "/admin/keywords", "admin", lists))[0] == 200
    status, flagged = await target.call(
        "POST",
        f"/conversations/{target.ids['conversations']}/messages",
        "relative",
        {"cid": "flagged", "body": "他想越狱"},
    )
    assert status == 201, flagged
    ids["flags"] = flagged["id"]
    found = text_cases(spec, ids)
    described = {(c.method, c.path.split("?")[0], c.field) for c in found}
    inmate = f"/inmates/{target.ids['inmates']}"
    for expected in [  # the fields the issue names (a guard on the generator itself)
        ("POST", "/auth/register", "name"),
        ("POST", "/links", "relationship"),
        ("POST", "/complaints", "body"),
        ("POST", "/announcements", "title"),
        ("POST", "/announcements", "body"),
        ("POST", "/admin/prisons", "name"),
        ("POST", "/canned", "body"),
        ("POST", "/visits", "visitor_names"),
        ("POST", "/visits/1/decline", "reason"),
    ]:
        assert expected in described, (expected, sorted(described))
    assert any(m == "PATCH" and p == inmate for m, p, _ in described)
    problems: list[str] = []
    reached = 0
    target.tokens["supervisor"] = target.world.token(target.world.supervisor)
    for case in found:
        got_it = False
        for actor in (*ACTORS, "supervisor"):
            status, reply = await target.call(case.method, case.path, actor, case.body)
            code = reply.get("error", {}).get("code") if isinstance(reply, dict) else None
            if status >= 500:
                problems.append(f"{case} as {actor}: {status} {reply}")
            elif status == 400 and code == INVALID_TEXT:
                if _names(reply) != case.field:
                    problems.append(f"{case} as {actor}: names {_names(reply)!r}: {reply}")
                got_it = True
            elif 200 <= status < 300:
                problems.append(f"{case} as {actor}: stored ({status})")
        if got_it:
            reached += 1
        elif not case.patterned:
            problems.append(f"{case}: no caller got an invalid_text answer: {status} {reply}")
    assert not problems, "\n".join(problems)
    assert reached >= 20, reached  # the check ran on the routes, not only on the generator


def test_the_socket_refuses_nul_in_a_send_with_its_cid() -> None:
    bad_body = json.dumps({"type": "send", "conv": 1, "cid": "c1", "body": NUL})
    refused = decode_client(bad_body)
    assert isinstance(refused, ProtocolError)
    assert (refused.code, refused.cid) == (INVALID_TEXT, "c1")
    bad_cid = json.dumps({"type": "send", "conv": 1, "cid": "c\u0000", "body": "fine"})
    refused = decode_client(bad_cid)
    assert isinstance(refused, ProtocolError) and refused.code == INVALID_TEXT
    fine = decode_client(json.dumps({"type": "send", "conv": 1, "cid": "c", "body": "汉字 é ✓"}))
    assert isinstance(fine, Send)


async def _conversation_in_sanshui(live: Live) -> tuple[int, str]:
    """A relative verified for an inmate of the other prison, and its conversation."""
    store: PostgresDatabase = live.store
    w = live.world
    other = await accounts.add_user(store, "relative", "13800000009", "Li Na", "x")
    inmate = await prisons.add_inmate(store, w.sanshui.id, "SS-001", "Li Qiang")
    link = await links.request_link(store, other.id, inmate.id, "wife", "marriage certificate")
    await links.decide_link(store, link, "verified", w.other_officer.id, None)
    conv = await conversations.open_conversation(store, other.id, inmate.id)
    from server import sessions

    return conv.id, await sessions.issue(store, other, days=1)


async def test_a_relatives_nul_never_fails_another_relatives_sends(live: Live) -> None:
    """Regression (issue 12, item 3): a relative sending "x\\u0000y" within its rate limit
    made 12 of 15 normal sends of another relative in another prison fail with ``internal``
    (PostgreSQL refuses U+0000, and group commit stored both in one transaction). Now the NUL
    is refused at decode, ``invalid_text`` with its cid, and every other send is acked."""
    w = live.world
    other_conv, other_token = await _conversation_in_sanshui(live)
    nul_ws = await raw(live, w.token(w.relative))
    good_ws = await raw(live, other_token)

    async def answers(ws: Any, n: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while len(got) < n:
            frame = await recv(ws)
            if frame["type"] in ("ack", "error"):
                got.append(frame)
        return got

    good: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        for round_ in range(5):
            # one send leaves alone; the next ones of both relatives queue behind its commit
            # and would leave together, in one transaction
            ok = {"type": "send", "conv": other_conv, "cid": f"ok{round_}", "body": "hi"}
            await good_ws.send(json.dumps(ok))
            for n in range(2):
                frame = {"type": "send", "conv": w.conv.id, "cid": f"nul{round_}.{n}", "body": NUL}
                await nul_ws.send(json.dumps(frame))
                ok = {"type": "send", "conv": other_conv, "cid": f"ok{round_}.{n}", "body": "hi"}
                await good_ws.send(json.dumps(ok))
            more_bad, more_good = await asyncio.gather(answers(nul_ws, 2), answers(good_ws, 3))
            bad += more_bad
            good += more_good
    assert [a["type"] for a in good] == ["ack"] * 15, good
    assert [a["seq"] for a in good] == list(range(1, 16))
    assert {(a["type"], a["code"]) for a in bad} == {("error", INVALID_TEXT)}
    expected = sorted(f"nul{r}.{n}" for r in range(5) for n in range(2))
    assert sorted(a["cid"] for a in bad) == expected
    assert await messages.messages(live.store, w.conv.id) == []
    await nul_ws.close()
    await good_ws.close()
