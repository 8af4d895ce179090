"""Storage: the ``Store`` contract and its SQLite and PostgreSQL implementations."""

from __future__ import annotations

from urllib.parse import urlsplit

from storage.base import Store, StoreUnavailable

SCHEMES = ("sqlite", "postgresql", "postgres")


def sqlite_path(url: str) -> str:
    """``sqlite:///var/k.db`` is relative to the working directory, ``sqlite:////abs/k.db``
    absolute, and ``sqlite:///:memory:`` in memory."""
    path = url.split("://", 1)[1]
    return path[1:] if path.startswith("/") else path


async def open_store(url: str) -> Store:
    """Open the store a database URL names. Raises ``ValueError`` for an unknown scheme and
    ``StoreUnavailable`` when the database cannot be reached."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from storage.sqlite import SqliteStore

        return await SqliteStore.open(sqlite_path(url))
    if scheme in ("postgresql", "postgres"):
        from storage.postgres import PostgresStore

        return await PostgresStore.open(url)
    raise ValueError(f"unknown database URL scheme {scheme!r} (use one of {', '.join(SCHEMES)})")


__all__ = ["SCHEMES", "Store", "StoreUnavailable", "open_store", "sqlite_path"]
