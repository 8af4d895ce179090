"""``ObjectStore`` on any S3-compatible store (AWS S3, MinIO, Ceph...) with aiobotocore, the
asyncio client over botocore. One client per process, opened by ``S3Objects.open`` and
closed by ``close``. Keys live under an optional prefix in one bucket. Credentials come from
the arguments or botocore's usual chain (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
an instance role). A missing key is ``NotFound``; a store that cannot be reached, or answers
with a server error, is ``StoreUnavailable``.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage.errors import NotFound, StoreUnavailable
from storage.objects import checked

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Objects:
    def __init__(self, client: Any, stack: AsyncExitStack, bucket: str, prefix: str) -> None:
        self._client = client
        self._stack = stack
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""

    @classmethod
    async def open(
        cls,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> S3Objects:
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=endpoint,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=Config(
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path"},
                ),
            )
        )
        return cls(client, stack, bucket, prefix)

    def _key(self, key: str) -> str:
        return self._prefix + checked(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await self._client.put_object(
                Bucket=self._bucket, Key=self._key(key), Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"object store: {type(exc).__name__}") from None

    async def get(self, key: str) -> bytes:
        try:
            answer = await self._client.get_object(Bucket=self._bucket, Key=self._key(key))
            async with answer["Body"] as stream:
                data: bytes = await stream.read()
            return data
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                raise NotFound(key) from None
            raise StoreUnavailable(f"object store: {type(exc).__name__}") from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"object store: {type(exc).__name__}") from None

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete_object(Bucket=self._bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"object store: {type(exc).__name__}") from None

    async def close(self) -> None:
        await self._stack.aclose()
