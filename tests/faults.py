"""Fault injection: a TCP proxy that can cut every connection and refuse new ones
(in the manner of asyncpg's TCPFuzzingProxy), to make PostgreSQL unreachable on demand, or
answer new ones the way a PostgreSQL out of connection slots does ("too many clients")."""

from __future__ import annotations

import asyncio
import contextlib
import struct

_SSL_REQUESTS = (80877103, 80877104)  # SSLRequest, GSSENCRequest
_TOO_MANY_CLIENTS = b"SFATAL\0VFATAL\0C53300\0Msorry, too many clients already\0\0"


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.cut = False
        self.full = False
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def sever(self) -> None:
        """Cut every open connection now and refuse the next ones until ``restore``."""
        self.cut = True
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    def exhaust(self) -> None:
        """Cut every open connection now and answer the next ones, until ``restore``, with
        PostgreSQL's FATAL 53300 "too many clients" (no connection slot left)."""
        self.sever()
        self.cut = False
        self.full = True

    def restore(self) -> None:
        self.cut = False
        self.full = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.full:
            await self._no_slot(reader, writer)
            return
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes.update((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _no_slot(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read the startup message (declining TLS) and refuse it as a full server does."""
        try:
            while True:
                length, code = struct.unpack("!II", await reader.readexactly(8))
                if length == 8 and code in _SSL_REQUESTS:
                    writer.write(b"N")
                    continue
                await reader.readexactly(length - 8)
                break
            writer.write(b"E" + struct.pack("!I", len(_TOO_MANY_CLIENTS) + 4) + _TOO_MANY_CLIENTS)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._pipes.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()
