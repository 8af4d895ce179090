"""Which outside service each test reaches, as markers, so the pure tests can run on their own.

Every collected test is marked from the fixtures it uses: ``postgres`` when it uses ``pg_url``
(directly or through another fixture) or a fixture parametrized ``"postgres"`` (such a fixture
asks for ``pg_url`` with ``request.getfixturevalue``, which no fixture closure shows); ``redis``
likewise for ``redis_url`` and ``"redis"``, and for a local Redis Cluster (``redis_cluster``,
``own_redis_cluster``, ``"cluster"``); ``browser`` for ``chromium``. A test that runs a
child process says so itself with ``spawns`` (``slow``: it spawns servers). A test with none of
these is ``pure``: it runs inside the pytest process and reaches nothing outside it.

``make test`` runs the pure tests first, alone, in asyncio debug mode (``PYTHONASYNCIODEBUG=1``
and ``--asyncio-debug``) with warnings as errors, then every other test (``-m "not pure"``);
the two runs together run each test once. Warnings as errors catch a coroutine never awaited
and a socket, transport or file left open (``ResourceWarning``). What asyncio *logs* instead
of warning (a task's exception never retrieved, an unclosed aiohttp session, a callback that
raised) is caught here: in asyncio debug mode, an ERROR from the ``asyncio`` logger during a
test, or while the garbage it left is collected, fails that test. Slow callbacks are logged as
warnings only, and stay warnings: on a loaded machine they say nothing about the code.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Generator

import pytest

SERVICES = {
    "pg_url": "postgres",
    "redis_url": "redis",
    "redis_cluster": "redis",
    "own_redis_cluster": "redis",
    "chromium": "browser",
}
PARAMETERS = {"postgres": "postgres", "redis": "redis", "cluster": "redis"}
IMPURE = {*SERVICES.values(), "spawns", "slow"}


def needs(item: pytest.Item) -> set[str]:
    """The services (and child processes) one test reaches."""
    found = {SERVICES[name] for name in getattr(item, "fixturenames", ()) if name in SERVICES}
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        params = [v for v in callspec.params.values() if isinstance(v, str)]
        found |= {PARAMETERS[v] for v in params if v in PARAMETERS}
    return found | {mark.name for mark in item.iter_markers() if mark.name in IMPURE}


class _Errors(logging.Handler):
    """Keeps the ERROR records of the ``asyncio`` logger until the running test reads them."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Plugin:
    """Registered by ``conftest.py``: marks the tests, and in asyncio debug mode guards them."""

    def __init__(self, config: pytest.Config) -> None:
        self.errors: _Errors | None = None
        debug = sys.flags.dev_mode or os.environ.get("PYTHONASYNCIODEBUG")  # as asyncio decides
        if debug or config.getoption("asyncio_debug", False):  # ... or pytest-asyncio
            self.errors = _Errors()
            logging.getLogger("asyncio").addHandler(self.errors)

    @pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Add the markers of what each test needs, and ``pure`` to those that need nothing."""
        for item in items:
            found = needs(item)
            for name in sorted(found - {m.name for m in item.iter_markers()}):
                item.add_marker(name)
            if not found:
                item.add_marker("pure")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.errors is not None:
            self.errors.records.clear()  # what an earlier test left was reported with it

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None]:
        """Fail the test that leaves asyncio reporting an error (debug mode only)."""
        yield
        if self.errors is None:
            return
        gc.collect()  # a pending task or an open session reports itself when collected
        found, self.errors.records = self.errors.records, []
        if found:
            lines = "\n".join(self.errors.format(record) for record in found)
            pytest.fail(f"asyncio reported errors during {item.nodeid}:\n{lines}", pytrace=False)
