"""The bureau's inmate register: add, import from the prison's records system, transfer,
release and archive. Every change and its audit entry commit in one ``db.write()``.

- **Import** reads the CSV a prison's records system exports (``parse_csv``: UTF-8 with or
  without a BOM, or GB18030, as Chinese office software writes it; a header naming the
  number and name columns in Chinese or English). ``import_inmates`` compares every line with
  the register *inside one write transaction*: with ``apply=False`` (the dry run) it reports
  what would change and rolls back, so nothing is written; with ``apply=True`` it writes the
  same plan and one audit entry per inmate added or renamed. A line that cannot be used is
  an error of its own line and never stops the others. Only held inmates are updated: a
  released or archived number is an error (``not_held``), not a silent re-admission.
- **Transfer** moves an inmate to another prison with its family links and threads (their
  ``prison_id`` follows it; a thread held by an officer of the old prison goes back to the
  new prison's queue, waiting), and cancels its visits still to come at the old prison.
- **Release / archive** ends every open family link (pending or verified -> revoked, each
  audited as ``link.revoked`` with the reason), resolves its open threads, and stores a
  notice for each relative whose link ended (``relative_notices``).

The callers tell the relatives and the sockets (``server/api/inmate_records.py``): this
module returns what changed, the relatives and links affected.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec

from domain.records import FamilyLink, Inmate
from storage import audit_trail
from storage.errors import Conflict, NotFound
from storage.links import LINK_SELECT, _link
from storage.sql import Database, Row, Sql, clamp_limit, for_update, ids_in

InmateStatus = Literal["held", "released", "archived"]
Outcome = Literal["added", "updated", "unchanged", "error"]
NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")
MAX_NAME = 100
MAX_LINES = 5000

# Header names the records systems use for the two columns we read (others are ignored).
NUMBER_HEADERS = frozenset({"number", "inmate_number", "编号", "罪犯编号", "服刑人员编号"})
NAME_HEADERS = frozenset({"name", "姓名", "罪犯姓名", "服刑人员姓名"})

NOTICE_TEXT: dict[str, tuple[str, str]] = {
    "released": (
        "亲属关联已结束 / Family link ended",
        "{name}（{number}）已释放，亲属关联已结束。"
        " / {name} ({number}) has been released; the family link has ended.",
    ),
    "archived": (
        "亲属关联已结束 / Family link ended",
        "{name}（{number}）的档案已归档，亲属关联已结束。"
        " / The record of {name} ({number}) was archived; the family link has ended.",
    ),
    "transferred": (
        "服刑人员已调监 / Inmate transferred",
        "{name}（{number}）已调往{prison}。 / {name} ({number}) was transferred to {prison}.",
    ),
}


class RegisteredInmate(msgspec.Struct, frozen=True):
    id: int
    prison_id: int
    number: str
    name: str
    status: InmateStatus


class CsvLine(msgspec.Struct, frozen=True):
    line: int  # 1-based, counting the header
    number: str
    name: str
    error: str | None = None  # a code: the line cannot be used as it is


class LineReport(msgspec.Struct, frozen=True, omit_defaults=True):
    line: int
    number: str
    outcome: Outcome
    name: str = ""
    before: str | None = None  # updated: the name it had
    inmate_id: int | None = None
    error: str | None = None  # code, when outcome is "error"


class ImportReport(msgspec.Struct, frozen=True):
    applied: bool
    added: int
    updated: int
    unchanged: int
    errors: int
    lines: list[LineReport]


class CsvRefused(Exception):
    """The file as a whole cannot be read (``code``: ``csv_encoding``, ``csv_header``,
    ``csv_too_long``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvRefused("csv_encoding", "the file is neither UTF-8 nor GB18030 text")


def parse_csv(data: bytes) -> list[CsvLine]:
    """The lines of an exported register; each line checked on its own."""
    text = _decode(data)
    if "\x00" in text:
        raise CsvRefused("csv_encoding", "the file contains NUL characters")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows:
        raise CsvRefused("csv_header", "the file is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    number_col = next((i for i, h in enumerate(header) if h in NUMBER_HEADERS), None)
    name_col = next((i for i, h in enumerate(header) if h in NAME_HEADERS), None)
    if number_col is None or name_col is None:
        raise CsvRefused("csv_header", "the first line must name the number and name columns")
    if len(rows) - 1 > MAX_LINES:
        raise CsvRefused("csv_too_long", f"at most {MAX_LINES} lines in one import")
    lines: list[CsvLine] = []
    seen: set[str] = set()
    for index, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines
        number = row[number_col].strip() if number_col < len(row) else ""
        name = row[name_col].strip() if name_col < len(row) else ""
        error = None
        if not NUMBER.fullmatch(number):
            error = "bad_number"
        elif not name or len(name) > MAX_NAME:
            error = "bad_name"
        elif number in seen:
            error = "duplicate_line"
        seen.add(number)
        lines.append(CsvLine(index, number, name, error))
    return lines


_SELECT = "SELECT id, prison_id, number, name, status FROM inmates"


def _registered(row: Row) -> RegisteredInmate:
    return RegisteredInmate(row["id"], row["prison_id"], row["number"], row["name"], row["status"])


async def _insert(sql: Sql, prison_id: int, number: str, name: str, now: datetime) -> int:
    inmate_id: int = await sql.fetchval(
        "INSERT INTO inmates (prison_id, number, name, created_at) VALUES ($1, $2, $3, $4)"
        " RETURNING id",
        prison_id,
        number,
        name,
        now,
    )
    return inmate_id


async def add_inmate(
    db: Database, prison_id: int, number: str, name: str, *, actor_id: int, now: datetime
) -> RegisteredInmate:
    """A held inmate, audited (``inmate.add``); ``Conflict`` when the prison has the number,
    ``NotFound`` when there is no such prison."""
    async with db.write() as sql:
        if await sql.fetchval("SELECT id FROM prisons WHERE id = $1", prison_id) is None:
            raise NotFound(f"prison {prison_id}")
        inmate_id = await _insert(sql, prison_id, number, name, now)
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action="inmate.add",
            object_type="inmate",
            object_id=inmate_id,
            prison_id=prison_id,
            after={"number": number, "name": name, "status": "held"},
        )
    return RegisteredInmate(inmate_id, prison_id, number, name, "held")


class _Rollback(Exception):
    """Leaves a dry run's transaction without committing anything."""


async def import_inmates(
    db: Database,
    prison_id: int,
    lines: Sequence[CsvLine],
    *,
    apply: bool,
    actor_id: int,
    now: datetime,
) -> ImportReport:
    """Compare ``lines`` with the prison's register and report per line; write it (and audit
    each change) only when ``apply``. ``NotFound`` when there is no such prison."""
    reports: list[LineReport] = []
    try:
        async with db.write() as sql:
            if (
                await sql.fetchval(
                    "SELECT id FROM prisons WHERE id = $1" + for_update(db), prison_id
                )
                is None
            ):
                raise NotFound(f"prison {prison_id}")
            rows = await sql.fetch(_SELECT + " WHERE prison_id = $1", prison_id)
            known = {r["number"]: _registered(r) for r in rows}
            for line in lines:
                reports.append(
                    await _import_line(sql, prison_id, line, known, apply, actor_id, now)
                )
            if not apply:
                raise _Rollback
    except _Rollback:
        pass
    count = {o: sum(1 for r in reports if r.outcome == o) for o in ("added", "updated")}
    return ImportReport(
        applied=apply,
        added=count["added"],
        updated=count["updated"],
        unchanged=sum(1 for r in reports if r.outcome == "unchanged"),
        errors=sum(1 for r in reports if r.outcome == "error"),
        lines=reports,
    )


async def _import_line(
    sql: Sql,
    prison_id: int,
    line: CsvLine,
    known: dict[str, RegisteredInmate],
    apply: bool,
    actor_id: int,
    now: datetime,
) -> LineReport:
    if line.error is not None:
        return LineReport(line.line, line.number, "error", line.name, error=line.error)
    found = known.get(line.number)
    if found is None:
        inmate_id = await _insert(sql, prison_id, line.number, line.name, now) if apply else None
        if inmate_id is not None:
            await audit_trail.record(
                sql,
                at=now,
                actor_id=actor_id,
                action="inmate.add",
                object_type="inmate",
                object_id=inmate_id,
                prison_id=prison_id,
                after={"number": line.number, "name": line.name, "status": "held", "via": "import"},
            )
        return LineReport(line.line, line.number, "added", line.name, inmate_id=inmate_id)
    if found.status != "held":
        return LineReport(
            line.line, line.number, "error", line.name, inmate_id=found.id, error="not_held"
        )
    if found.name == line.name:
        return LineReport(line.line, line.number, "unchanged", line.name, inmate_id=found.id)
    if apply:
        await sql.execute("UPDATE inmates SET name = $2 WHERE id = $1", found.id, line.name)
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action="inmate.update",
            object_type="inmate",
            object_id=found.id,
            prison_id=prison_id,
            before={"name": found.name},
            after={"name": line.name, "via": "import"},
        )
    return LineReport(
        line.line, line.number, "updated", line.name, before=found.name, inmate_id=found.id
    )


async def registered(db: Database, inmate_id: int) -> RegisteredInmate:
    async with db.read() as sql:
        row = await sql.fetchrow(_SELECT + " WHERE id = $1", inmate_id)
    if row is None:
        raise NotFound(f"inmate {inmate_id}")
    return _registered(row)


async def register(
    db: Database,
    *,
    prison_id: int | None = None,
    status: InmateStatus | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[RegisteredInmate]:
    """Inmates by ascending id after ``after``, of one prison and one status if given."""
    async with db.read() as sql:
        rows = await sql.fetch(
            _SELECT + " WHERE (CAST($1 AS bigint) IS NULL OR prison_id = $1)"
            " AND (CAST($2 AS text) IS NULL OR status = $2) AND id > $3 ORDER BY id LIMIT $4",
            prison_id,
            status,
            after,
            clamp_limit(limit),
        )
    return [_registered(r) for r in rows]


class Moved(msgspec.Struct, frozen=True):
    """What a transfer, a release or an archiving changed, for the caller to tell."""

    inmate: RegisteredInmate
    from_prison: int
    links: list[FamilyLink]  # the inmate's links as they are now (revoked ones: just ended)
    relatives: list[int]  # told with a notice
    conversations: list[int]  # its threads
    notices: list[tuple[int, int, str, str]]  # (notice id, relative, title, body)


async def _notices(
    sql: Sql,
    relatives: Sequence[int],
    inmate: RegisteredInmate,
    kind: str,
    now: datetime,
    prison_name: str = "",
) -> list[tuple[int, int, str, str]]:
    title, template = NOTICE_TEXT[kind]
    body = template.format(name=inmate.name, number=inmate.number, prison=prison_name)
    made = []
    for relative in relatives:
        notice_id: int = await sql.fetchval(
            "INSERT INTO relative_notices (relative_id, inmate_id, kind, title, body, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            relative,
            inmate.id,
            kind,
            title,
            body,
            now,
        )
        made.append((notice_id, relative, title, body))
    return made


async def _held_for_change(db: Database, sql: Sql, inmate_id: int) -> RegisteredInmate:
    row = await sql.fetchrow(_SELECT + " WHERE id = $1" + for_update(db), inmate_id)
    if row is None:
        raise NotFound(f"inmate {inmate_id}")
    inmate = _registered(row)
    if inmate.status != "held":
        raise Conflict("status")
    return inmate


async def _links_of(sql: Sql, inmate_id: int) -> list[FamilyLink]:
    rows = await sql.fetch(LINK_SELECT + " WHERE l.inmate_id = $1 ORDER BY l.id", inmate_id)
    return [_link(sql, r) for r in rows]


async def transfer(
    db: Database, inmate_id: int, to_prison: int, *, actor_id: int, now: datetime
) -> Moved:
    """Move a held inmate with its links and threads. ``NotFound`` (inmate or prison),
    ``Conflict("status")`` (not held), ``Conflict("same_prison")``, ``Conflict("number")``
    (the new prison already has an inmate with that number)."""
    async with db.write() as sql:
        inmate = await _held_for_change(db, sql, inmate_id)
        target = await sql.fetchrow("SELECT id, name FROM prisons WHERE id = $1", to_prison)
        if target is None:
            raise NotFound(f"prison {to_prison}")
        if inmate.prison_id == to_prison:
            raise Conflict("same_prison")
        taken = await sql.fetchval(
            "SELECT id FROM inmates WHERE prison_id = $1 AND number = $2", to_prison, inmate.number
        )
        if taken is not None:
            raise Conflict("number")
        await sql.execute("UPDATE inmates SET prison_id = $2 WHERE id = $1", inmate.id, to_prison)
        moved_links = await sql.execute(
            "UPDATE family_links SET prison_id = $2 WHERE inmate_id = $1", inmate.id, to_prison
        )
        convs = [
            int(r["id"])
            for r in await sql.fetch(
                "SELECT id FROM conversations WHERE inmate_id = $1" + for_update(db), inmate.id
            )
        ]
        requeued = await sql.execute(
            "UPDATE conversations SET state = 'waiting', assigned_officer_id = NULL,"
            " handover_note = NULL WHERE inmate_id = $1 AND state = 'active'",
            inmate.id,
        )
        await sql.execute(
            f"UPDATE conversations SET prison_id = $1 WHERE id IN {ids_in(convs)}", to_prison
        )
        cancelled = await sql.execute(
            "UPDATE visit_requests SET state = 'cancelled', reason = 'inmate transferred',"
            " decided_by = $2, decided_at = $3"
            " WHERE inmate_id = $1 AND state IN ('pending', 'approved') AND slot_start > $3",
            inmate.id,
            actor_id,
            now,
        )
        links = await _links_of(sql, inmate.id)
        relatives = sorted({link.relative_id for link in links if link.state == "verified"})
        notices = await _notices(sql, relatives, inmate, "transferred", now, target["name"])
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action="inmate.transfer",
            object_type="inmate",
            object_id=inmate.id,
            prison_id=to_prison,
            before={"prison_id": inmate.prison_id},
            after={
                "prison_id": to_prison,
                "links": moved_links,
                "conversations": len(convs),
                "requeued": requeued,
                "visits_cancelled": cancelled,
            },
        )
    after = msgspec.structs.replace(inmate, prison_id=to_prison)
    return Moved(after, inmate.prison_id, links, relatives, convs, notices)


async def end(
    db: Database,
    inmate_id: int,
    status: Literal["released", "archived"],
    *,
    actor_id: int,
    now: datetime,
    note: str = "",
) -> Moved:
    """Release or archive a held inmate: its open links end (revoked, each audited), its open
    threads are resolved, each relative whose link ended gets a notice. ``NotFound``,
    ``Conflict("status")``."""
    reason = f"inmate {status}" + (f": {note}" if note else "")
    async with db.write() as sql:
        inmate = await _held_for_change(db, sql, inmate_id)
        await sql.execute(
            "UPDATE inmates SET status = $2, status_at = $3 WHERE id = $1", inmate.id, status, now
        )
        ending = await sql.fetch(
            "SELECT id, relative_id, state FROM family_links"
            " WHERE inmate_id = $1 AND state IN ('pending', 'verified') ORDER BY id"
            + for_update(db),
            inmate.id,
        )
        for row in ending:
            await sql.execute(
                "UPDATE family_links SET state = 'revoked', reason = $2, decided_by = $3,"
                " decided_at = $4 WHERE id = $1",
                row["id"],
                reason,
                actor_id,
                now,
            )
            await audit_trail.record(
                sql,
                at=now,
                actor_id=actor_id,
                action="link.revoked",
                object_type="family_link",
                object_id=row["id"],
                prison_id=inmate.prison_id,
                before={"state": row["state"]},
                after={"state": "revoked", "reason": reason},
            )
        convs = [
            int(r["id"])
            for r in await sql.fetch("SELECT id FROM conversations WHERE inmate_id = $1", inmate.id)
        ]
        resolved = await sql.execute(
            "UPDATE conversations SET state = 'resolved', assigned_officer_id = NULL"
            " WHERE inmate_id = $1 AND state IN ('waiting', 'active')",
            inmate.id,
        )
        if convs:
            await sql.execute(
                "UPDATE conversation_cycles SET resolved_at = $1, resolved_by = $2"
                f" WHERE conversation_id IN {ids_in(convs)} AND resolved_at IS NULL",
                now,
                actor_id,
            )
        relatives = sorted({int(r["relative_id"]) for r in ending})
        notices = await _notices(sql, relatives, inmate, status, now)
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action=f"inmate.{status}",
            object_type="inmate",
            object_id=inmate.id,
            prison_id=inmate.prison_id,
            before={"status": "held"},
            after={"status": status, "links_ended": len(ending), "resolved": resolved}
            | ({"note": note} if note else {}),
        )
        ended_ids = {int(r["id"]) for r in ending}
        links = [link for link in await _links_of(sql, inmate.id) if link.id in ended_ids]
    after = msgspec.structs.replace(inmate, status=status)
    return Moved(after, inmate.prison_id, links, relatives, convs, notices)


class Notice(msgspec.Struct, frozen=True):
    id: int
    kind: str
    title: str
    body: str
    inmate_id: int | None
    at: datetime


async def notices(db: Database, relative_id: int, *, limit: int = 50) -> list[Notice]:
    """A relative's notices, newest first."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT id, kind, title, body, inmate_id, created_at FROM relative_notices"
            " WHERE relative_id = $1 ORDER BY id DESC LIMIT $2",
            relative_id,
            clamp_limit(limit),
        )
        return [
            Notice(
                r["id"], r["kind"], r["title"], r["body"], r["inmate_id"], sql.when(r["created_at"])
            )
            for r in rows
        ]


def as_inmate(inmate: RegisteredInmate) -> Inmate:
    return Inmate(inmate.id, inmate.prison_id, inmate.number, inmate.name)
