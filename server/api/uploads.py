"""Reading a request body that carries a file: bounded by ``Settings.max_upload_bytes``
(the guard answers 413 for a larger announced length; this answers 413 for a longer body
that announced none, chunked) and by ``body_timeout`` (408, connection closed)."""

from __future__ import annotations

import asyncio

from aiohttp import BodyPartReader, web

from server.api.base import ApiError, invalid
from server.keys import SETTINGS


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the file exceeds {limit} bytes", close=True)


async def read_capped(request: web.Request) -> bytes:
    """The raw body, at most ``max_upload_bytes``."""
    settings = request.app[SETTINGS]
    limit = settings.max_upload_bytes
    try:
        async with asyncio.timeout(settings.body_timeout):
            data = await request.content.read(limit + 1)
            while len(data) <= limit:
                more = await request.content.read(limit + 1 - len(data))
                if not more:
                    break
                data += more
    except TimeoutError:
        raise ApiError(
            408,
            "body_timeout",
            f"the body did not arrive within {settings.body_timeout:g} s",
            close=True,
        ) from None
    if len(data) > limit:
        raise _too_large(limit)
    return data


async def multipart_file(request: web.Request, field: str = "file") -> bytes:
    """The bytes of the multipart part named ``field``, at most ``max_upload_bytes``."""
    if request.content_type != "multipart/form-data":
        raise invalid(field, "send the file as multipart/form-data")
    settings = request.app[SETTINGS]
    limit = settings.max_upload_bytes
    try:
        async with asyncio.timeout(settings.body_timeout):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if isinstance(part, BodyPartReader) and part.name == field:
                    data = bytearray()
                    while chunk := await part.read_chunk(64 * 1024):
                        data += chunk
                        if len(data) > limit:
                            raise _too_large(limit)
                    return bytes(data)
    except TimeoutError:
        raise ApiError(
            408,
            "body_timeout",
            f"the body did not arrive within {settings.body_timeout:g} s",
            close=True,
        ) from None
    except ValueError:
        raise invalid(field, "the multipart body is malformed") from None
    raise invalid(field, f"no part named {field}")


async def multipart_named_file(
    request: web.Request, limit: int, field: str = "file"
) -> tuple[bytes, str | None]:
    """The bytes of the multipart part named ``field`` (at most ``limit``: 413 ``too_large``)
    and the file name the client gave it."""
    if request.content_type != "multipart/form-data":
        raise invalid(field, "send the file as multipart/form-data")
    settings = request.app[SETTINGS]
    try:
        async with asyncio.timeout(settings.body_timeout):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if isinstance(part, BodyPartReader) and part.name == field:
                    data = bytearray()
                    while chunk := await part.read_chunk(64 * 1024):
                        data += chunk
                        if len(data) > limit:
                            if request.content_length is None:  # chunked: no end in sight
                                raise _too_large(limit)
                            # announced, so the guard bounded it: read the rest, answer, and
                            # keep the connection (a client still writing gets the answer)
                            while await request.content.read(64 * 1024):
                                pass
                            raise ApiError(413, "too_large", f"the file exceeds {limit} bytes")
                    return bytes(data), part.filename
    except TimeoutError:
        raise ApiError(
            408,
            "body_timeout",
            f"the body did not arrive within {settings.body_timeout:g} s",
            close=True,
        ) from None
    except ValueError:
        raise invalid(field, "the multipart body is malformed") from None
    raise invalid(field, f"no part named {field}")
