"""No number or date a client sends can reach storage out of range.

msgspec decodes integers of any size, and PostgreSQL's and SQLite's integers are 64-bit: an
unbounded id used to fail in storage (SQLite: OverflowError, a 500; asyncpg: a client-side
DataError, a 503), and a date at the end of the calendar overflowed date arithmetic (a 500).
Each input is bounded in ``server/api/base.py`` instead, and refused as a 400 that names it.

The cases are generated from ``GET /api/v1/openapi.json``, so a new route is covered without
touching this file: every integer in a route's path (2**64, 2**63, -1, a non-ASCII digit:
404), query or body (2**64, and -1 where the schema has a lower bound: 400 naming the field),
and every date and date-time (year 1 and year 9999: 400 naming the field), sent as an admin,
an officer, a verified relative and anonymously, against an in-process server on SQLite and
on PostgreSQL with Redis. No answer may be a 500 or a 503; a 400 must name the field; and at
least one of those callers must get past the policy to the check, so a case cannot pass by
being refused for some other reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest

from server.config import Settings
from storage.postgres import PostgresDatabase
from storage.sqlite import SqliteDatabase
from tests.servers import free_port, inprocess
from tests.sites import site_for
from tests.world import World, seed, seed_staff

MAX_ID = 2**63 - 1
TOO_BIG = 2**64
PATH_VALUES = (str(TOO_BIG), str(MAX_ID + 1), "-1", "%C2%B2")  # ² passes str.isdigit()
DATES = ("0001-01-01", "9999-12-31")
MOMENTS = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")
ACTORS = ("anonymous", "admin", "officer", "relative")


@dataclass
class Target:
    api: str
    http: aiohttp.ClientSession
    world: World
    tokens: dict[str, str]  # actor -> bearer token
    ids: dict[str, int]  # first path segment -> an id of that kind that exists

    async def call(self, method: str, path: str, actor: str, json: Any = None) -> tuple[int, Any]:
        token = self.tokens.get(actor)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(
            method, self.api + path, json=json, headers=headers
        ) as response:
            text = await response.text()
            return response.status, (await response.json() if text else None)


def _target(api: str, http: aiohttp.ClientSession, world: World, admin: Any) -> Target:
    tokens = {
        "admin": world.token(admin),
        "officer": world.token(world.officer),  # of Gaoming
        "relative": world.token(world.relative),  # verified for inmate A, in conv
    }
    ids = {
        "conversations": world.conv.id,
        "inmates": world.conv.inmate_id,
        "prisons": world.gaoming.id,
        "supervisors": world.supervisor.id,
    }
    return Target(api, http, world, tokens, ids)


@pytest.fixture(params=["sqlite", "postgres"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "sqlite":
        store = await SqliteDatabase.open(str(tmp_path / "kinline.db"))
        await store.migrate()
        try:
            world = await seed(store)
            staff = await seed_staff(store, world)
            settings = Settings(port=free_port(), secret="tests")
            async with inprocess(settings, store) as served, aiohttp.ClientSession() as http:
                yield _target(served.http_url + "/api/v1", http, world, staff.admin)
        finally:
            await store.close()
    else:
        pg_url: str = request.getfixturevalue("pg_url")
        redis_url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        pg_store = await PostgresDatabase.open(pg_url)
        try:
            await pg_store.migrate()
            await _empty(pg_url)
            async with site_for(pg_store, pg_url, redis_url, prefix) as site:
                yield _target(site.api, site.http, site.world, site.staff.admin)
        finally:
            await pg_store.close()


async def _empty(url: str) -> None:
    """Every table emptied, ids from 1 again (as the ``pg_store`` fixture leaves it)."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations'"
        )
        names = ", ".join(r["tablename"] for r in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


# -- the cases, from the OpenAPI description ----------------------------------------------------


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # under /api/v1, path parameters filled in
    field: str  # the query or body field the answer must name (dotted when nested)
    where: str  # "query" or "body"
    value: Any  # the bad value (for "query": a string)
    body: Any = None  # the whole body (for "body")

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.where} {self.field}={self.value!r}"


@dataclass(frozen=True)
class PathCase:
    method: str
    path: str  # a path parameter replaced by a bad value
    body: Any

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _options(schema: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema's alternatives (``anyOf``), resolved, without ``null``."""
    schema = _resolve(schema, spec)
    found = [_resolve(s, spec) for s in schema.get("anyOf", [schema])]
    return [s for s in found if s.get("type") != "null"]


def _bad_values(schema: dict[str, Any]) -> list[Any]:
    """What to send instead of a valid value of a leaf (an integer, a date, a date-time)."""
    if schema.get("type") == "integer":
        floor = schema.get("minimum", schema.get("exclusiveMinimum"))
        return [TOO_BIG, -1] if floor is not None and floor >= 0 else [TOO_BIG]
    if schema.get("type") == "string" and schema.get("format") == "date":
        return list(DATES)
    if schema.get("type") == "string" and schema.get("format") == "date-time":
        return list(MOMENTS)
    return []


def _leaves(
    schema: dict[str, Any], spec: dict[str, Any], at: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(path into the body, bad value) for every integer, date and date-time in ``schema``,
    through nested objects, arrays (index 0) and ``anyOf``."""
    for option in _options(schema, spec):
        for value in _bad_values(option):
            yield at, value
        if option.get("type") == "object":
            for name, inner in option.get("properties", {}).items():
                yield from _leaves(inner, spec, (*at, name))
        elif option.get("type") == "array" and "items" in option:
            yield from _leaves(option["items"], spec, (*at, 0))


def _valid(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A value that passes decoding: the required fields of an object, filled in plainly."""
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
        return "x" * max(1, option.get("minLength", 1))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    raise AssertionError(f"no plain value for {option}")


def _with(
    schema: dict[str, Any], spec: dict[str, Any], at: tuple[str | int, ...], value: Any
) -> Any:
    """A valid value of ``schema`` with ``value`` put at ``at``, the bad key first in each
    object (a decoder stops at the first bad value, so the answer names that one)."""
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


def _fill(path: str, ids: dict[str, int]) -> str:
    """The route's path with each parameter an existing object of its first segment."""
    first = path.removeprefix("/api/v1/").split("/")[0]
    return path.removeprefix("/api/v1").replace("{id}", str(ids.get(first, 1)))


def cases(spec: dict[str, Any], ids: dict[str, int]) -> tuple[list[Case], list[PathCase]]:
    found: list[Case] = []
    paths: list[PathCase] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body_schema = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            valid = _valid(body_schema, spec) if body_schema else None  # for path cases
            filled = _fill(path, ids)
            for parameter in operation["parameters"]:
                name, schema = parameter["name"], parameter["schema"]
                if parameter["in"] == "path":
                    assert schema.get("type") == "integer", (path, name)
                    for bad in PATH_VALUES:
                        bad_path = path.removeprefix("/api/v1").replace(f"{{{name}}}", bad)
                        paths.append(PathCase(method.upper(), bad_path, valid))
                elif parameter["in"] == "query":
                    for at, bad in _leaves(schema, spec):
                        assert not at, (path, name, at)  # a query parameter is a scalar
                        text = str(bad)
                        query = f"{name}={quote(text, safe='')}"  # a date-time's + too
                        found.append(Case(method.upper(), f"{filled}?{query}", name, "query", text))
            if body_schema is not None:
                for at, bad in _leaves(body_schema, spec):
                    assert at and isinstance(at[0], str), (path, at)
                    # msgspec names the top-level field of a bad number; the date window
                    # (checked once decoded) names the whole dotted path, as in "term.start"
                    dotted = ".".join(step for step in at if isinstance(step, str))
                    named = at[0] if isinstance(bad, int) else dotted
                    body = _with(body_schema, spec, at, bad)
                    found.append(Case(method.upper(), filled, named, "body", bad, body))
    return found, paths


async def _spec(target: Target) -> dict[str, Any]:
    status, spec = await target.call("GET", "/openapi.json", "anonymous")
    assert status == 200
    return dict(spec)


def _names(reply: Any) -> str | None:
    error = reply.get("error", {}) if isinstance(reply, dict) else {}
    field = error.get("field")
    return field if isinstance(field, str) else None


# -- the tests ------------------------------------------------------------------------------------


async def test_integers_and_dates_in_queries_and_bodies_are_refused_as_400(
    target: Target,
) -> None:
    found, _ = cases(await _spec(target), target.ids)
    described = {(c.method, c.path.split("?")[0], c.field) for c in found}
    # the generator sees what the reviewer named (a guard on the generator itself)
    for expected in [
        ("GET", "/announcements", "before"),
        ("GET", "/inmates", "after"),
        ("GET", "/visits", "inmate"),
        ("GET", "/complaints", "before"),
        ("GET", "/audit", "object_id"),
        ("GET", "/stats", "to"),
        ("POST", "/complaints", "conversation_id"),
        ("POST", "/visits", "slot_start"),
        ("POST", "/admin/users", "prison_ids"),
        ("POST", "/links", "prison"),
        ("PATCH", f"/inmates/{target.ids['inmates']}", "term_change.decided_on"),
    ]:
        assert expected in described, expected
    problems: list[str] = []
    for case in found:
        reached = False
        for actor in ACTORS:
            status, reply = await target.call(case.method, case.path, actor, case.body)
            field = _names(reply)
            if not 400 <= status < 500:
                problems.append(f"{case} as {actor}: {status} {reply}")
            elif status == 400:
                if field != case.field:
                    problems.append(f"{case} as {actor}: 400 names {field!r}: {reply}")
                elif reply["error"]["code"] != "invalid_request":
                    problems.append(f"{case} as {actor}: {reply}")
                else:
                    reached = True
        if not reached:
            problems.append(f"{case}: no caller got past the policy to the check")
    assert not problems, "\n".join(problems)
    # the bound is not too tight: the largest id is a valid one (it only finds nothing)
    for path, actor in [
        (f"/announcements?before={MAX_ID}", "anonymous"),
        (f"/audit?before_id={MAX_ID}&object_id={MAX_ID}", "admin"),
        (f"/conversations/{target.ids['conversations']}/messages?after={MAX_ID}", "officer"),
    ]:
        status, reply = await target.call("GET", path, actor)
        assert status == 200, (path, status, reply)


async def test_path_ids_that_no_bigint_can_hold_are_404(target: Target) -> None:
    _, found = cases(await _spec(target), target.ids)
    assert len(found) >= 4 * 20  # every route with an {id}, four bad values each
    problems: list[str] = []
    for case in found:
        answers = [
            (actor, *await target.call(case.method, case.path, actor, case.body))
            for actor in ACTORS
        ]
        for actor, status, reply in answers:
            if status not in (401, 403, 404):
                problems.append(f"{case} as {actor}: {status} {reply}")
        if not any(status == 404 for _, status, _ in answers):
            problems.append(f"{case}: nobody got 404: {answers}")
    assert not problems, "\n".join(problems)
    # the largest id is looked up (and, here, not found) like any other
    status, reply = await target.call("GET", f"/prisons/{MAX_ID}", "anonymous")
    assert (status, reply["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=0001-01-01", "to"),
        ("to=9999-12-31", "to"),
        ("from=9999-12-25&to=9999-12-31", "from"),
        ("from=0001-01-01&to=0001-01-07", "from"),
    ],
)
async def test_a_stats_range_at_the_ends_of_the_calendar_is_400(
    target: Target, query: str, field: str
) -> None:
    for path, actor in [("/stats", "officer"), ("/stats", "admin"), ("/stats/bureau", "admin")]:
        status, reply = await target.call("GET", f"{path}?{query}", actor)
        assert status == 400, (path, actor, status, reply)
        assert reply["error"] == {
            "code": "invalid_request",
            "field": field,
            "message": f"{field} must be between 1900-01-01 and 2199-12-31",
        }
    status, reply = await target.call("GET", "/stats?from=2025-01-01&to=2025-12-31", "admin")
    assert status == 200, reply  # a full year, well inside the window
