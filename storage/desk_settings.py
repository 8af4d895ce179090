"""A prison's desk settings: auto-assignment (off, or round robin with a per-officer cap), the
automatic reply when nobody is on duty, and the desk hours that reply states.

Written once over ``store`` (``storage/sql.py``). A prison without a row has the defaults
(``DEFAULT``: assignment off, no away reply). A change is written with its audit entry
(``desk_settings.changed``, before and after) in one transaction; round robin's position
(``last_assigned_id``) is the assigner's (``storage/routing.py``), not a setting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from storage import audit_trail
from storage.errors import NotFound
from storage.sql import Database, Row, Sql, for_update

AutoAssign = Literal["off", "round_robin"]


class DeskHours(msgspec.Struct, frozen=True):
    """When the desk is staffed, in words, per language (``{"zh-CN": ..., "en": ...}``)."""

    zh: str = msgspec.field(default="", name="zh-CN")
    en: str = ""


class DeskSettings(msgspec.Struct, frozen=True, kw_only=True):
    prison_id: int
    auto_assign: AutoAssign = "off"
    assign_cap: int = 5  # threads one officer is given automatically at most (held at once)
    away_reply: bool = False  # answer a question nobody on duty can take, once per question
    desk_hours: DeskHours = DeskHours()


_COLUMNS = "prison_id, auto_assign, assign_cap, away_reply, desk_hours_zh, desk_hours_en"


def _settings(row: Row) -> DeskSettings:
    return DeskSettings(
        prison_id=row["prison_id"],
        auto_assign=row["auto_assign"],
        assign_cap=int(row["assign_cap"]),
        away_reply=bool(row["away_reply"]),
        desk_hours=DeskHours(row["desk_hours_zh"], row["desk_hours_en"]),
    )


def _plain(settings: DeskSettings) -> dict[str, Any]:
    """The settings as the audit trail keeps them (no prison id: the entry names it)."""
    return {
        "auto_assign": settings.auto_assign,
        "assign_cap": settings.assign_cap,
        "away_reply": settings.away_reply,
        "desk_hours": {"zh-CN": settings.desk_hours.zh, "en": settings.desk_hours.en},
    }


async def _read(sql: Sql, prison_id: int, lock: str = "") -> DeskSettings:
    row = await sql.fetchrow(
        f"SELECT {_COLUMNS} FROM desk_settings WHERE prison_id = $1" + lock, prison_id
    )
    if row is not None:
        return _settings(row)
    if not await sql.fetchval("SELECT count(*) FROM prisons WHERE id = $1", prison_id):
        raise NotFound(f"prison {prison_id}")
    return DeskSettings(prison_id=prison_id)


async def settings(db: Database, prison_id: int) -> DeskSettings:
    """The prison's settings (the defaults when it never changed them); ``NotFound`` if there
    is no such prison."""
    async with db.read() as sql:
        return await _read(sql, prison_id)


async def update(
    db: Database, new: DeskSettings, actor_id: int, now: datetime
) -> tuple[DeskSettings, bool]:
    """Store the prison's settings, audited ``desk_settings.changed`` with before and after;
    whether anything changed (the same settings again write nothing). ``NotFound`` if there
    is no such prison."""
    async with db.write() as sql:
        old = await _read(sql, new.prison_id, for_update(db))
        if old == new:
            return old, False
        await sql.execute(
            f"INSERT INTO desk_settings ({_COLUMNS}, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (prison_id) DO UPDATE SET"
            " auto_assign = excluded.auto_assign, assign_cap = excluded.assign_cap,"
            " away_reply = excluded.away_reply, desk_hours_zh = excluded.desk_hours_zh,"
            " desk_hours_en = excluded.desk_hours_en, updated_at = excluded.updated_at",
            new.prison_id,
            new.auto_assign,
            new.assign_cap,
            new.away_reply,
            new.desk_hours.zh,
            new.desk_hours.en,
            now,
        )
        await audit_trail.record(
            sql,
            at=now,
            actor_id=actor_id,
            action="desk_settings.changed",
            object_type="prison",
            object_id=new.prison_id,
            prison_id=new.prison_id,
            before=_plain(old),
            after=_plain(new),
        )
        return new, True


async def waiting_auto_prisons(db: Database) -> list[int]:
    """The prisons with auto-assignment on and a question nobody holds: where an assigner
    has something to do."""
    async with db.read() as sql:
        rows = await sql.fetch(
            "SELECT DISTINCT s.prison_id FROM desk_settings s JOIN conversations c"
            " ON c.prison_id = s.prison_id AND c.state = 'waiting'"
            " AND c.assigned_officer_id IS NULL"
            " WHERE s.auto_assign = 'round_robin' ORDER BY s.prison_id"
        )
    return [int(r["prison_id"]) for r in rows]
