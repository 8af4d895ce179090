"""The peer server: what a Python team would write instead of Kinline (bench/README.md).

``python -m bench.peer.server --port P --dsn DSN --redis URL --channel NAME``, started twice by
the bench on one port (SO_REUSEPORT). python-socketio's defaults are kept (the standard
library's ``json``, each event handled in a task of its own, Engine.IO's ping every 25 s);
only the WebSocket transport is offered, as the bench's client speaks nothing else.

Events (the same field names as Kinline's frames, so the bench drives both the same way):

- connect with ``auth {token}``: the token's SHA-256 is looked up in Kinline's ``sessions``
  (one query); refused unless live. Then ``welcome {pid}``, so the bench can tell the processes.
- ``watch {conv}``: joins the room of the conversation; the ack is ``{conv}``.
- ``send {conv, cid, body}``: ``seq`` under a row lock, insert, commit, then ``message {conv,
  seq, sender, body, cid, at}`` to the room; the ack is ``{cid, conv, seq, at}``. Nothing else
  is checked (no membership, no rate limit, no keyword review, no idempotent ``cid``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
import socketio
import uvloop
from aiohttp import web

HOST = "127.0.0.1"

SESSION = (
    "SELECT u.id FROM sessions s JOIN users u ON u.id = s.user_id"
    " WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()"
    " AND NOT u.disabled"
)
LOCK = "SELECT seq FROM peer_conversations WHERE id = $1 FOR UPDATE"
BUMP = "UPDATE peer_conversations SET seq = $2 WHERE id = $1"
INSERT = (
    "INSERT INTO peer_messages (conversation_id, seq, sender, body, client_id, at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)


def room(conv: int) -> str:
    return f"conversation:{conv}"


class Peer:
    """The event handlers of one process."""

    def __init__(self, sio: socketio.AsyncServer, pool: asyncpg.Pool) -> None:
        self.sio = sio
        self.pool = pool
        sio.on("connect", self.connect)
        sio.on("watch", self.watch)
        sio.on("send", self.send)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            return False
        digest = hashlib.sha256(token.encode()).digest()
        async with self.pool.acquire() as conn:
            user = await conn.fetchval(SESSION, digest)
        if user is None:
            return False
        await self.sio.save_session(sid, {"user": user})
        await self.sio.emit("welcome", {"pid": os.getpid()}, to=sid)
        return True

    async def watch(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        conv = int(data["conv"])
        await self.sio.enter_room(sid, room(conv))
        return {"conv": conv}

    async def send(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        session = await self.sio.get_session(sid)
        conv, cid, body = int(data["conv"]), str(data["cid"]), str(data["body"])
        at = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            seq = await conn.fetchval(LOCK, conv) + 1
            await conn.execute(BUMP, conv, seq)
            await conn.execute(INSERT, conv, seq, session["user"], body, cid, at)
        stamp = at.isoformat()
        message = {
            "conv": conv,
            "seq": seq,
            "sender": session["user"],
            "body": body,
            "cid": cid,
            "at": stamp,
        }
        await self.sio.emit("message", message, room=room(conv))
        return {"cid": cid, "conv": conv, "seq": seq, "at": stamp}


async def serve(port: int, dsn: str, redis_url: str, channel: str) -> None:
    """Serve until SIGTERM or SIGINT; print ``ready PID`` on stdout once listening."""
    pool = await asyncpg.create_pool(dsn)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=socketio.AsyncRedisManager(redis_url, channel=channel),
        transports=["websocket"],
    )
    Peer(sio, pool)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, shutdown_timeout=5.0)  # the bench closed its sockets first
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port, reuse_port=True).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        print(f"ready {os.getpid()}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        await pool.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer.server", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True, help="PostgreSQL URL of the bench's database")
    parser.add_argument("--redis", required=True, help="Redis URL")
    parser.add_argument("--channel", default="socketio", help="the Redis pub/sub channel")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.port, args.dsn, args.redis, args.channel))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
