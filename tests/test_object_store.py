"""The object-store contract (``storage/objects.py``), one test table run against both
implementations: files under a directory, and S3 through aiobotocore against a real
S3-compatible server (moto's server mode, a child process on a loopback port)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.errors import NotFound
from storage.objects import LocalObjects, ObjectStore, new_key
from storage.objects_s3 import S3Objects
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, moto_s3


@pytest.fixture(params=["local", "s3"])
async def objects(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "local":
        yield LocalObjects(tmp_path / "files")
        return
    async with moto_s3() as server:
        opened = await S3Objects.open(
            server.bucket,
            "attachments",
            endpoint=server.endpoint,
            region=REGION,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
        )
        try:
            yield opened
        finally:
            await opened.close()


pytestmark = pytest.mark.spawns  # the S3 half runs moto's server as a child process


async def test_put_then_get_returns_the_same_bytes(objects: ObjectStore) -> None:
    key = new_key("a")
    data = bytes(range(256)) * 1000
    await objects.put(key, data, "application/octet-stream")
    assert await objects.get(key) == data


async def test_put_again_replaces(objects: ObjectStore) -> None:
    key = new_key("a")
    await objects.put(key, b"first", "text/plain")
    await objects.put(key, b"second", "text/plain")
    assert await objects.get(key) == b"second"


async def test_a_key_never_written_is_not_found(objects: ObjectStore) -> None:
    with pytest.raises(NotFound):
        await objects.get(new_key("a"))


async def test_delete_removes_and_is_idempotent(objects: ObjectStore) -> None:
    key, other = new_key("a"), new_key("t")
    await objects.put(key, b"gone soon", "text/plain")
    await objects.put(other, b"stays", "text/plain")
    await objects.delete(key)
    with pytest.raises(NotFound):
        await objects.get(key)
    await objects.delete(key)  # again: nothing to do, no error
    await objects.delete(new_key("a"))  # never written: no error either
    assert await objects.get(other) == b"stays"


async def test_empty_objects_are_kept(objects: ObjectStore) -> None:
    key = new_key("a")
    await objects.put(key, b"", "application/octet-stream")
    assert await objects.get(key) == b""


async def test_keys_the_server_did_not_make_are_refused(objects: ObjectStore) -> None:
    for bad in ("../etc/passwd", "/abs", "a/../../b", "A/UPPER", "a//b", ""):
        with pytest.raises(ValueError):
            await objects.put(bad, b"x", "text/plain")
