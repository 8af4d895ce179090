"""Versioned SQL migrations, one folder per backend: ``NNNN_name.sql``, applied in order.

Numbers are unique but may have gaps: parallel branches are each given a number ahead of
time, and a database applies whichever of them it has not applied yet (by version, not by
"the highest seen"), so a branch merged later still gets its migration applied. ``apply`` is
the one migrator both adaptors run; what differs (the lock, the table's time type, how a script
is split into statements) is what each adaptor passes it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

from storage.sql import Database, utcnow


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load(backend: str) -> list[Migration]:
    folder = resources.files(__package__).joinpath(backend)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(
                Migration(int(version), rest.removesuffix(".sql"), entry.read_text("utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    # Unique and from 1; a gap is allowed (work given a later number may land before the
    # work given the earlier one; each version is applied once, whenever it arrives).
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise RuntimeError(f"{backend} migrations are not numbered uniquely from 1: {versions}")
    return found


async def apply(
    db: Database,
    *,
    at_type: str,
    first: Iterable[str] = (),
    statements: Callable[[str], Iterable[str]] = lambda script: (script,),
) -> list[str]:
    """Apply, in one write transaction of ``db``, every migration of its dialect that
    ``schema_migrations`` does not list; the names applied (empty when up to date). ``first``
    runs before anything is read (PostgreSQL: the lock that makes migrators take turns);
    ``at_type`` is the type of the table's ``applied_at``; ``statements`` splits a script."""
    applied: list[str] = []
    async with db.write() as sql:
        for statement in first:
            await sql.execute(statement)
        await sql.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            f" name text NOT NULL, applied_at {at_type} NOT NULL)"
        )
        done = {r["version"] for r in await sql.fetch("SELECT version FROM schema_migrations")}
        for migration in load(db.dialect):
            if migration.version in done:
                continue
            for statement in statements(migration.sql):
                await sql.execute(statement)
            await sql.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                utcnow(),
            )
            applied.append(f"{migration.version:04d}_{migration.name}")
    return applied
