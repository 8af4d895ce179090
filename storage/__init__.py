"""Storage: one design. A ``Database`` adaptor per dialect (``storage/sqlite.py``,
``storage/postgres.py``) and every area written once over it (``storage/sql.py`` says how)."""

from __future__ import annotations

from urllib.parse import urlsplit

from storage.errors import StoreUnavailable
from storage.sql import Database

SCHEMES = ("sqlite", "postgresql", "postgres")


def sqlite_path(url: str) -> str:
    """``sqlite:///var/k.db`` is relative to the working directory, ``sqlite:////abs/k.db``
    absolute, and ``sqlite:///:memory:`` in memory."""
    path = url.split("://", 1)[1]
    return path[1:] if path.startswith("/") else path


async def open_database(url: str) -> Database:
    """Open the database a URL names. Raises ``ValueError`` for an unknown scheme and
    ``StoreUnavailable`` when the database cannot be reached."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from storage.sqlite import SqliteDatabase

        return await SqliteDatabase.open(sqlite_path(url))
    if scheme in ("postgresql", "postgres"):
        from storage.postgres import PostgresDatabase

        return await PostgresDatabase.open(url)
    raise ValueError(f"unknown database URL scheme {scheme!r} (use one of {', '.join(SCHEMES)})")


__all__ = ["SCHEMES", "Database", "StoreUnavailable", "open_database", "sqlite_path"]
