from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import services


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a throwaway PostgreSQL database, created for this test session."""
    yield from services.throwaway_postgres()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis server (skipped outside CI when it is down, failed in CI)."""
    return services.redis_url()
