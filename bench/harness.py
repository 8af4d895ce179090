"""Shared machinery of the ``kinline bench`` workloads.

- :class:`Bench`: a throwaway PostgreSQL database (created, migrated, dropped in ``finally``),
  seeding helpers on :class:`storage.postgres.PostgresDatabase`, and ``kinline serve --workers 2``
  as a subprocess on a free loopback port (stopped with SIGTERM, always); or, with
  ``server="socketio"``, the python-socketio peer of ``bench/peer`` on the same seed data, and
  its sockets through :meth:`Bench.connect` and friends.
- :class:`WsClient`: a deliberately small WebSocket client on a raw ``asyncio.Protocol``
  (uvloop when available). No per-socket task, no per-frame JSON parsing unless the workload
  asks for it, client frames masked with the all-zero key (valid per RFC 6455, and free), pings
  answered with pongs so the server's heartbeat never cuts an idle socket.
- Measurement helpers: percentiles in ms, RSS and CPU readings from ``/proc``, a progress line
  on stderr and the final JSON on stdout and in ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg

from bench.peer import processes as peer_processes
from bench.peer import schema as peer_schema
from domain.records import Conversation, Prison, User
from server import sessions
from storage import accounts, conversations, keywords, links, prisons
from storage.postgres import PostgresDatabase

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
KINLINE = ROOT / ".venv" / "bin" / "kinline"
PG_ADMIN_URL = os.environ.get("KINLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("KINLINE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
HOST = "127.0.0.1"  # loopback only, always
PASSWORD_HASH = "bench$not-a-real-hash"  # nobody logs in: sessions are issued directly
SUBPROTOCOL = "kinline.v1"
SERVERS = ("kinline", "socketio")  # --server: Kinline, or the python-socketio peer (bench/peer)

T = TypeVar("T")


# -- small utilities --------------------------------------------------------------------------


def install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def add_server_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="kinline",
        help="the server under load: kinline, or socketio (the python-socketio peer of"
        " bench/peer, on the same seed data and workload)",
    )


def raise_nofile() -> int:
    """Lift the soft open-files limit to the hard one; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


_progress = {"at": 0.0}


def progress(text: str, *, force: bool = False) -> None:
    """Rewrite one status line on stderr (at most ~10 times a second unless forced)."""
    now = time.monotonic()
    if force or now - _progress["at"] > 0.1:
        _progress["at"] = now
        sys.stderr.write(f"\r\x1b[K{text}")
        sys.stderr.flush()


def note(text: str) -> None:
    """A line of its own on stderr (ends the progress line)."""
    sys.stderr.write(f"\r\x1b[K{text}\n")
    sys.stderr.flush()


def percentiles_ms(samples: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p95/p99/p99.9/max (and count, mean) of ``samples`` given in seconds, in ms."""
    if not samples:
        keys = ("p50", "p95", "p99", "p999", "max", "mean")
        return {"count": 0, **dict.fromkeys(keys)}
    ordered = sorted(samples)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, max(0, int(q * n + 0.5) - 1))] * 1000, 3)

    return {
        "count": n,
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": round(ordered[-1] * 1000, 3),
        "mean": round(sum(ordered) / n * 1000, 3),
    }


async def gather_bounded(
    factories: Iterable[Callable[[], Awaitable[T]]], limit: int = 32
) -> list[T]:
    """Run the coroutines made by ``factories`` with at most ``limit`` at once, in order."""
    gate = asyncio.Semaphore(limit)

    async def one(make: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await make()

    return list(await asyncio.gather(*(one(f) for f in factories)))


def emit(workload: str, result: dict[str, Any]) -> Path:
    """Print ``result`` as one JSON object on stdout and write it to bench/results/."""
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{workload}-{stamp}.json"
    text = json.dumps(result, sort_keys=False)
    path.write_text(text + "\n")
    sys.stderr.write("\r\x1b[K")
    print(text, flush=True)
    note(f"written to {path}")
    return path


# -- /proc readings ---------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts[:8]]
    idle = values[3] + values[4]
    total = sum(values)
    return (total - idle) / _TICK, total / _TICK


SERVICES = ("postgres", "redis-server")


def services_cpu_seconds() -> float:
    """CPU seconds of every PostgreSQL and Redis process now alive (backends come and go:
    an approximation, good for the seconds of one step)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() in SERVICES:
                    total += cpu_seconds(int(entry))
            except OSError:
                continue
    return total


@dataclass
class CpuMeter:
    """CPU used between ``start()`` and ``stop()`` by: this process (the load generator),
    the server workers, PostgreSQL + Redis, and everything else on the machine (on a shared
    box: other people's processes, and the kernel's softirq work)."""

    workers: Sequence[int]
    _t0: float = 0.0
    _self0: float = 0.0
    _workers0: float = 0.0
    _busy0: float = 0.0
    _services0: float = 0.0

    def start(self) -> None:
        self._services0 = services_cpu_seconds()
        self._t0 = time.perf_counter()
        self._self0 = time.process_time()
        self._workers0 = sum(cpu_seconds(p) for p in self.workers)
        self._busy0 = machine_busy_seconds()[0]

    def stop(self) -> dict[str, float]:
        wall = max(1e-9, time.perf_counter() - self._t0)
        me = time.process_time() - self._self0
        workers = sum(cpu_seconds(p) for p in self.workers) - self._workers0
        busy = machine_busy_seconds()[0] - self._busy0
        services = services_cpu_seconds() - self._services0
        return {
            "wall_s": round(wall, 3),
            "loadgen_cores": round(me / wall, 3),
            "workers_cores": round(workers / wall, 3),
            "postgres_redis_cores": round(services / wall, 3),
            "other_cores": round(max(0.0, busy - me - workers - services) / wall, 3),
            "machine_cores_busy": round(busy / wall, 3),
            "machine_cores": os.cpu_count() or 0,
        }


# -- the WebSocket client ---------------------------------------------------------------------

TextHandler = Callable[["WsClient", bytes, float], None]
BARRIER = b'{"type":"bench_barrier"}'


class HandshakeError(Exception):
    pass


class WsClient(asyncio.Protocol):
    """One WebSocket connection. ``on_text(client, payload, arrived)`` gets every text frame;
    ``arrived`` is ``perf_counter()`` taken once when the bytes came in (before parsing).
    By default text frames are kept in ``inbox`` (setup phases); workloads swap in a handler.
    """

    def __init__(self, request: bytes) -> None:
        self._request = request
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._handshaken = False
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.worker = 0
        self.inbox: list[bytes] = []
        self._waiter: asyncio.Future[None] | None = None
        self.on_text: TextHandler = WsClient._keep
        self.close_code: int | None = None
        self.lost = False
        self.busy_s = 0.0  # time spent in data_received (client-side overhead)
        self.frames_in = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport = self.transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.handshake.done():
            self.handshake.set_exception(HandshakeError(f"connection lost: {exc}"))
        self._wake()

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        buf = self._buf
        buf += data
        if not self._handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            self._on_head(head)
            if not self._handshaken:
                return
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", buf, pos + 2)
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = b0 & 0x0F
            payload = bytes(buf[start:end])
            pos = end
            self.frames_in += 1
            if opcode == 0x1:
                self.on_text(self, payload, arrived)
            elif opcode == 0x9:
                self._write_frame(0xA, payload)
            elif opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._write_frame(0x8, payload[:2])
                if self.transport is not None:
                    self.transport.close()
                break
        if pos:
            del buf[:pos]
        self.busy_s += time.perf_counter() - arrived

    # handshake

    def _on_head(self, head: str) -> None:
        lines = head.split("\r\n")
        status = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(status) < 2 or status[1] != "101":
            self.handshake.set_exception(HandshakeError(f"handshake refused: {lines[0]}"))
            if self.transport is not None:
                self.transport.close()
            return
        self.worker = int(headers.get("x-kinline-worker", "0") or 0)
        self._handshaken = True
        self.handshake.set_result(None)

    # frames

    @staticmethod
    def _keep(client: WsClient, payload: bytes, arrived: float) -> None:
        client.inbox.append(payload)
        client._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def expect(self, predicate: Callable[[bytes], bool], timeout: float = 10.0) -> bytes:
        """Wait for a kept frame matching ``predicate`` (frames before it are discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            while self.inbox:
                frame = self.inbox.pop(0)
                if predicate(frame):
                    return frame
            if self.lost:
                raise HandshakeError(f"socket closed (code {self.close_code})")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no expected frame")
            self._waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._waiter, left)
            self._waiter = None

    def _write_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        n = len(payload)
        if n < 126:
            head = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        # mask key 0: XOR with zero leaves the payload as is (a valid, if predictable, mask)
        self.transport.write(head + b"\0\0\0\0" + payload)

    def send_text(self, payload: bytes) -> None:
        self._write_frame(0x1, payload)

    async def barrier(self, timeout: float = 15.0) -> None:
        """Wait until the server handled every frame sent before: frames of one socket are
        handled in order, and an unknown frame type is answered with an ``error``."""
        self.send_text(BARRIER)
        await self.expect(lambda f: b'"unknown_type"' in f, timeout)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._write_frame(0x8, struct.pack("!H", 1000))
            self.transport.close()


def _request(port: int, token: str) -> bytes:
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


Dial = Callable[[int, str, float], Awaitable[WsClient]]  # (port, token, timeout): welcomed


async def connect(port: int, token: str, timeout: float = 15.0) -> WsClient:
    """Open an authenticated socket and wait for its ``welcome``."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WsClient(_request(port, token)), HOST, port), timeout
    )
    try:
        await asyncio.wait_for(asyncio.shield(client.handshake), timeout)
        await client.expect(lambda f: f.startswith(b'{"type":"welcome"'), timeout)
    except BaseException:
        client.close()
        raise
    return client


async def barrier(client: WsClient, timeout: float = 15.0) -> None:
    """Wait until the server handled every frame sent before (:meth:`WsClient.barrier`)."""
    await client.barrier(timeout)


async def connect_on_worker(
    port: int,
    token: str,
    *,
    want: int | None = None,
    avoid: int | None = None,
    tries: int = 60,
    dial: Dial = connect,
) -> WsClient:
    """Reconnect until the socket lands on worker ``want`` (or not on ``avoid``)."""
    for _ in range(tries):
        client = await dial(port, token, 15.0)
        if (want is None or client.worker == want) and (avoid is None or client.worker != avoid):
            return client
        client.close()
    raise RuntimeError(f"could not place a socket (want={want}, avoid={avoid})")


# -- database, seeding and the server process -------------------------------------------------


def _with_database(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Pair:
    """A relative with a verified link to an inmate and their conversation."""

    relative: User
    token: str
    conversation: Conversation


@dataclass
class Bench:
    """One benchmark run: database, seed data, server. Use ``async with Bench(name) as b``.
    ``server="socketio"`` runs the peer (bench/peer) instead of Kinline, on the same seed
    data; open its sockets with :meth:`connect`, :meth:`connect_on_worker`, :meth:`open_many`.
    """

    name: str
    workers: int = 2
    env: dict[str, str] = field(default_factory=dict)
    server: str = "kinline"
    peer: peer_processes.PeerServer | None = None
    store: PostgresDatabase | None = None
    database: str = ""
    port: int = 0
    prison: Prison | None = None
    process: asyncio.subprocess.Process | None = None
    worker_pids: list[int] = field(default_factory=list)
    log_path: str = ""
    _users: int = 0

    async def __aenter__(self) -> Bench:
        raise_nofile()
        self.database = f"kinline_bench_{self.name}_{secrets.token_hex(4)}"
        await _admin(f'CREATE DATABASE "{self.database}"')
        try:
            self.store = await PostgresDatabase.open(
                _with_database(self.database), min_size=2, max_size=32, timeout=30.0
            )
            await self.store.migrate()
            self.prison = await prisons.add_prison(
                self.store, f"B{secrets.token_hex(3)}", "Bench prison"
            )
        except BaseException:
            await self._drop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop_server()
        finally:
            try:
                if self.store is not None:
                    await self.store.close()
            finally:
                await self._drop()

    async def _drop(self) -> None:
        with contextlib.suppress(Exception):
            await _admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    # seeding

    def _login(self, prefix: str) -> str:
        self._users += 1
        return f"{prefix}{self._users}-{secrets.token_hex(3)}"

    async def keyword_lists(self) -> None:
        """The demo's keyword lists (server/demo.py), so the send path matches every message."""
        from server.demo import KEYWORDS  # the demo module imports the server: only here

        assert self.store is not None
        lists = [keywords.KeywordList(code, label, words) for code, label, words in KEYWORDS]
        await keywords.replace_lists(self.store, lists, None, datetime.now(UTC))

    async def officers(self, count: int) -> list[tuple[User, str]]:
        """``count`` officers of the bench prison, each with a session token."""
        assert self.store is not None and self.prison is not None
        store, prison_id = self.store, self.prison.id

        async def one(login: str) -> tuple[User, str]:
            user = await accounts.add_user(
                store, "officer", login, login, PASSWORD_HASH, [prison_id]
            )
            return user, await sessions.issue(store, user, 1)

        logins = [self._login("officer") for _ in range(count)]
        return await gather_bounded([lambda lg=lg: one(lg) for lg in logins])  # type: ignore[misc]

    async def pairs(self, count: int, decider: User) -> list[Pair]:
        """``count`` relatives, each verified for its own inmate, with an open conversation."""
        assert self.store is not None and self.prison is not None
        store, prison_id = self.store, self.prison.id

        async def one(login: str) -> Pair:
            user = await accounts.add_user(store, "relative", login, login, PASSWORD_HASH)
            inmate = await prisons.add_inmate(store, prison_id, login, f"Inmate of {login}")
            link = await links.request_link(store, user.id, inmate.id, "parent", "bench")
            await links.decide_link(store, link, "verified", decider.id, None)
            conv = await conversations.open_conversation(store, user.id, inmate.id)
            return Pair(user, await sessions.issue(store, user, 1), conv)

        logins = [self._login("relative") for _ in range(count)]
        return await gather_bounded([lambda lg=lg: one(lg) for lg in logins])  # type: ignore[misc]

    @property
    def dsn(self) -> str:
        """The URL of this run's database."""
        return _with_database(self.database)

    # sockets, for either server

    @property
    def dial(self) -> Dial:
        """The connect function of the server under load (Kinline's, or the peer's)."""
        if self.server == "socketio":
            from bench.peer.client import connect as peer_connect  # it imports this module

            return peer_connect
        return connect

    async def connect(self, token: str, timeout: float = 15.0) -> WsClient:
        return await self.dial(self.port, token, timeout)

    async def connect_on_worker(
        self, token: str, *, want: int | None = None, avoid: int | None = None
    ) -> WsClient:
        return await connect_on_worker(self.port, token, want=want, avoid=avoid, dial=self.dial)

    async def open_many(
        self,
        tokens: Sequence[str],
        count: int,
        *,
        after: Callable[[WsClient], Awaitable[None]] | None = None,
        limit: int = 64,
        label: str = "sockets",
    ) -> list[WsClient]:
        return await open_many(
            self.port, tokens, count, after=after, limit=limit, label=label, dial=self.dial
        )

    # the server

    async def start_server(self, timeout: float = 30.0) -> None:
        if self.server not in SERVERS:
            raise ValueError(f"unknown server {self.server!r}; one of {SERVERS}")
        self.port = free_port()
        if self.server == "socketio":
            await self._start_peer(timeout)
            return
        env = {
            **os.environ,
            "KINLINE_DATABASE_URL": _with_database(self.database),
            "KINLINE_REDIS_URL": REDIS_URL,
            "KINLINE_LOG_LEVEL": "WARNING",
            "KINLINE_LOG_FORMAT": "text",
            "KINLINE_SECRET": secrets.token_urlsafe(24),
            "KINLINE_SEND_RATE": "1000",
            "KINLINE_SEND_BURST": "1000",
            "KINLINE_MAX_SOCKETS_PER_USER": "100",
            **self.env,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        fd, self.log_path = tempfile.mkstemp(prefix="kinline-bench-server-", suffix=".log")
        command = [str(KINLINE), "serve", "--workers", str(self.workers)]
        command += ["--port", str(self.port), "--host", HOST]
        with os.fdopen(fd, "wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                *command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}); {self._log_tail()}")
            if await self._ready():
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"server not ready after {timeout:.0f} s; {self._log_tail()}")
        while time.monotonic() < deadline:
            self.worker_pids = sorted(
                p for p in children_of(self.process.pid) if "spawn_main" in cmdline(p)
            )
            if len(self.worker_pids) >= self.workers:
                break
            await asyncio.sleep(0.2)
        note(f"server pid {self.process.pid}, workers {self.worker_pids}, port {self.port}")

    async def _start_peer(self, timeout: float) -> None:
        """The peer's tables (seeded with the conversations there are now), then its processes."""
        dsn = self.dsn
        conversations = await peer_schema.create(dsn)
        self.peer = await peer_processes.start(self.port, dsn, REDIS_URL, self.workers, timeout)
        self.worker_pids = self.peer.pids
        self.log_path = self.peer.log_path
        note(
            f"peer (python-socketio) pids {self.worker_pids}, port {self.port},"
            f" {conversations} conversations"
        )

    async def _ready(self) -> bool:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), 2)
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(
                f"GET /readyz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
            )
            line = await asyncio.wait_for(reader.readline(), 3)
            return line.split()[1:2] == [b"200"]
        except (OSError, TimeoutError, IndexError):
            return False
        finally:
            writer.close()

    async def wait_all_workers(self, token: str, timeout: float = 20.0) -> None:
        """Connect until every worker has served a socket (each one is accepting)."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(seen) < self.workers and time.monotonic() < deadline:
            client = await self.connect(token)
            seen.add(client.worker)
            client.close()
        if len(seen) < self.workers:
            raise RuntimeError(f"only workers {sorted(seen)} answered")
        if not seen <= set(self.worker_pids):
            self.worker_pids = sorted(seen)  # /proc disagreed: trust the sockets

    def rss(self) -> dict[int, int]:
        return {pid: rss_kib(pid) for pid in self.worker_pids}

    async def stop_server(self, timeout: float = 20.0) -> None:
        peer, self.peer = self.peer, None
        if peer is not None:
            await peer.stop(timeout)
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), 5)
        self._kill_stray_workers()

    def _kill_stray_workers(self) -> None:
        """SIGKILL a worker that outlived its parent (checked by its command line)."""
        for pid in self.worker_pids:
            with contextlib.suppress(ProcessLookupError):
                if "spawn_main" in cmdline(pid):
                    os.kill(pid, signal.SIGKILL)

    def _log_tail(self) -> str:
        try:
            return "server log tail:\n" + Path(self.log_path).read_text()[-3000:]
        except OSError:
            return "no server log"


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a workload's async main on uvloop; Ctrl-C still cleans up (asyncio.run cancels)."""
    install_uvloop()
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        note("interrupted")
        return 130


async def open_many(
    port: int,
    tokens: Sequence[str],
    count: int,
    *,
    after: Callable[[WsClient], Awaitable[None]] | None = None,
    limit: int = 64,
    label: str = "sockets",
    dial: Dial = connect,
) -> list[WsClient]:
    """Open ``count`` sockets, token ``i % len(tokens)`` for socket ``i``, at most ``limit``
    handshakes at once; ``after(client)`` runs on each once it is welcomed (e.g. a watch)."""
    done = 0

    async def one(index: int) -> WsClient:
        nonlocal done
        client = await dial(port, tokens[index % len(tokens)], 60.0)
        if after is not None:
            await after(client)
        done += 1
        progress(f"{label}: {done}/{count} open")
        return client

    return await gather_bounded(
        [lambda i=i: one(i) for i in range(count)],  # type: ignore[misc]
        limit=limit,
    )


def close_all(clients: Iterable[WsClient]) -> None:
    for client in clients:
        client.close()


def self_rss_kib() -> int:
    return rss_kib(os.getpid())
