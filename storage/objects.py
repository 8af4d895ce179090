"""The object store: where attachments' bytes live, behind one small interface.

``ObjectStore`` is four calls: ``put`` (write, replacing), ``get`` (``NotFound`` for a key
never written or deleted), ``delete`` (idempotent) and ``close``. Two implementations run the
same contract test (``tests/test_object_store.py``): ``LocalObjects``, files under a directory
(``var/files`` by default: one process or one machine), and ``S3Objects``
(``storage/objects_s3.py``), any S3-compatible store, for several hosts. A store that cannot
answer raises ``StoreUnavailable`` (503, like the database). Keys are made by the server
(``new_key``), never taken from a request.

``open_objects`` reads ``KINLINE_FILES``: a directory, or ``s3://bucket[/prefix]`` (with
``KINLINE_S3_ENDPOINT`` for a store other than AWS, and the usual ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` in the environment).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from storage.errors import NotFound, StoreUnavailable

_KEY = re.compile(r"^[a-z0-9][a-z0-9/_-]{0,200}$")


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    async def close(self) -> None: ...


def new_key(kind: str) -> str:
    """A fresh key nobody can guess: ``<kind>/<2 hex>/<32 hex>``."""
    token = secrets.token_hex(16)
    return f"{kind}/{token[:2]}/{token}"


def checked(key: str) -> str:
    if not _KEY.match(key) or ".." in key or "//" in key:
        raise ValueError(f"not an object key: {key!r}")
    return key


class LocalObjects:
    """Files under ``root``: written to a temporary name and renamed, so a reader never sees
    half a file; file I/O runs in a thread."""

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root)

    def _path(self, key: str) -> Path:
        return self._root / checked(key)

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise StoreUnavailable(f"cannot write {key}: {exc.strerror}") from None

    def _read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(key) from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {key}: {exc.strerror}") from None

    def _remove(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete {key}: {exc.strerror}") from None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._remove, key)

    async def close(self) -> None:
        return None


async def open_objects(where: str, *, endpoint: str = "", region: str = "us-east-1") -> ObjectStore:
    """The store ``where`` names: ``s3://bucket[/prefix]``, else a directory."""
    if where.startswith("s3://"):
        from storage.objects_s3 import S3Objects

        parts = urlsplit(where)
        return await S3Objects.open(
            parts.netloc, parts.path.strip("/"), endpoint=endpoint or None, region=region
        )
    return LocalObjects(where)
