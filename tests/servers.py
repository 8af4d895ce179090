"""Kinline servers for the tests: in this process (aiohttp on a real port) or as real
``kinline serve`` processes (one or several workers) sharing PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from server.app import build_app
from server.config import Settings
from storage.sql import Database

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    app: web.Application
    http_url: str
    ws_url: str


@asynccontextmanager
async def inprocess(settings: Settings, store: Database) -> AsyncIterator[Served]:
    """Serve ``build_app`` on 127.0.0.1 (a real TCP port, real sockets)."""
    app = build_app(settings, store=store)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.port)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Served(app, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws")
    finally:
        try:  # bounded: a teardown that hangs fails its test, naming what still runs
            async with asyncio.timeout(60):
                await runner.cleanup()
        except TimeoutError:
            stuck = [t.get_coro() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            raise AssertionError(f"server teardown hung; tasks still running: {stuck}") from None


async def wait_ready(
    url: str, process: subprocess.Popen[bytes] | None = None, attempts: int = 200
) -> None:
    """Poll ``/readyz`` until it answers 200 (bounded: ``attempts`` x 50 ms)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(attempts):
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not ready")


class ServerProcess:
    """``kinline serve`` as a child process."""

    def __init__(
        self,
        database_url: str,
        redis_url: str | None,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.workers = workers
        self.env = {
            **os.environ,
            "KINLINE_DATABASE_URL": database_url,
            "KINLINE_REDIS_URL": redis_url or "",
            "KINLINE_SECRET": "test-secret",
            "KINLINE_LOG_LEVEL": "WARNING",
            "KINLINE_SEND_RATE": "1000",
            "KINLINE_SEND_BURST": "1000",
            "KINLINE_MAX_SOCKETS_PER_USER": "64",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="kinline-server-", suffix=".log")  # noqa: SIM115 (lives as long as the server)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,  # its own process group, so a kill reaches its workers
        )
        await wait_ready(self.http_url, self.process)

    def kill_worker(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def logs(self) -> str:
        """What the server wrote to stderr (a file: a full pipe would block the server)."""
        with open(self.log.name, encoding="utf-8", errors="replace") as written:
            return written.read()

    async def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.process.wait, 20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the workers too, never orphans
            raise TimeoutError(
                f"server did not stop; its log ends:\n{self.logs()[-4000:]}"
            ) from None
