"""A real S3-compatible server for tests: moto's server mode (``moto[server]``, from the
package registry) run as a child process on a loopback port, started and stopped by the
test that needs it; its bucket is made with the same client the product uses."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiobotocore.session import get_session

from tests.servers import free_port

ACCESS_KEY = "kinline-test"
SECRET_KEY = "kinline-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str


@asynccontextmanager
async def moto_s3(bucket: str = "kinline-files") -> AsyncIterator[S3Server]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):  # bounded: 400 x 50 ms
                if process.poll() is not None:
                    raise RuntimeError(f"moto server exited with {process.returncode}")
                try:
                    async with http.get(f"{endpoint}/moto-api/") as response:
                        if response.status < 500:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise TimeoutError("moto server not ready")
        async with get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ) as client:
            await client.create_bucket(Bucket=bucket)
        yield S3Server(endpoint, bucket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
