"""Each adaptor sorts its driver's failures into ``storage.errors`` (a driver exception never
reaches a caller): what can succeed later is ``StoreUnavailable``, what never can is
``Unstorable``, a broken uniqueness rule is ``Conflict``, and a bug stays itself."""

from __future__ import annotations

import logging
import sqlite3
import sys

import asyncpg
import pytest

from storage import postgres
from storage.errors import Conflict, StoreError, StoreUnavailable, Unstorable
from storage.sqlite import SqliteDatabase

PG_CASES: list[tuple[Exception, type[StoreError]]] = [
    (asyncpg.exceptions.QueryCanceledError("canceling statement due to timeout"), StoreUnavailable),
    (asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients"), StoreUnavailable),
    (asyncpg.exceptions.AdminShutdownError("terminating connection"), StoreUnavailable),
    (
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        StoreUnavailable,
    ),
    (asyncpg.exceptions.ConnectionFailureError("connection failure"), StoreUnavailable),
    (
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        StoreUnavailable,
    ),
    (ConnectionResetError("reset by peer"), StoreUnavailable),
    (TimeoutError(), StoreUnavailable),
    (asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence 0x00"), Unstorable),
    (asyncpg.exceptions.NumericValueOutOfRangeError("bigint out of range"), Unstorable),
    (asyncpg.exceptions.CheckViolationError("violates check constraint"), Unstorable),
    (asyncpg.exceptions.UniqueViolationError("duplicate key"), Conflict),
]


@pytest.mark.parametrize(("fault", "sorted_as"), PG_CASES, ids=lambda c: type(c).__name__)
def test_postgres_faults_are_sorted(fault: Exception, sorted_as: type[StoreError]) -> None:
    with pytest.raises(sorted_as), postgres._sorted():
        raise fault


def test_a_postgres_bug_is_not_hidden_as_a_storage_fault() -> None:
    with pytest.raises(asyncpg.exceptions.UndefinedTableError), postgres._sorted():
        raise asyncpg.exceptions.UndefinedTableError('relation "nope" does not exist')


async def test_sqlite_faults_are_sorted() -> None:
    db = await SqliteDatabase.open(":memory:")
    try:
        await db.migrate()
        with pytest.raises(Conflict):
            async with db.write() as sql:
                for _ in range(2):
                    await sql.execute("INSERT INTO prisons (code, name) VALUES ('GM', 'x')")
        with pytest.raises(Unstorable):
            async with db.write() as sql:
                await sql.execute("INSERT INTO prisons (code, name) VALUES (NULL, 'x')")
        with pytest.raises(sqlite3.OperationalError):  # a bug, not an outage
            async with db.read() as sql:
                await sql.fetch("SELECT * FROM no_such_table")
    finally:
        await db.close()
    with pytest.raises(StoreUnavailable):  # closed: cannot answer
        await db.ping()


def test_the_pools_own_outage_warnings_are_folded_into_the_episode() -> None:
    """asyncpg's pool logs each failed retry of its connection floor with a traceback, its
    raw exception unsorted; the server folds those into the one outage log line."""
    from server import faults

    faults.fold_driver_logs()
    record = logging.LogRecord(
        "asyncpg.pool", logging.WARNING, __file__, 1, "Failed to restore the pool", (), None
    )
    try:
        raise asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
    except asyncpg.PostgresError:
        record.exc_info = sys.exc_info()
    assert not logging.getLogger("asyncpg.pool").filter(record)
    bug = logging.LogRecord("asyncpg.pool", logging.WARNING, __file__, 1, "other", (), None)
    try:
        raise asyncpg.exceptions.UndefinedTableError("no such table")
    except asyncpg.PostgresError:
        bug.exc_info = sys.exc_info()
    assert logging.getLogger("asyncpg.pool").filter(bug)
    faults.STORAGE.recovered()
