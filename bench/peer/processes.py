"""Start and stop the peer's processes (``python -m bench.peer.server``) for the bench.

Each process binds the same loopback port with SO_REUSEPORT, so the kernel spreads the
sockets over them as it does over Kinline's workers; each prints ``ready PID`` once it
listens. They share one Redis channel of their own (another run on the same Redis, with the
same conversation ids, must not reach their rooms). Logs go to a temporary file, shown when a
process fails to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class PeerServer:
    port: int
    log_path: str
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return sorted(p.pid for p in self.processes)

    def log_tail(self) -> str:
        try:
            return "peer log tail:\n" + Path(self.log_path).read_text()[-3000:]
        except OSError:
            return "no peer log"

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every process, SIGKILL one that has not exited within ``timeout``."""
        running = [p for p in self.processes if p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.wait_for(process.wait(), 5)


async def start(
    port: int, dsn: str, redis_url: str, processes: int = 2, timeout: float = 30.0
) -> PeerServer:
    """Start ``processes`` peer processes on ``port``; return once every one listens."""
    fd, log_path = tempfile.mkstemp(prefix="kinline-bench-peer-", suffix=".log")
    server = PeerServer(port, log_path)
    path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    command = [sys.executable, "-m", "bench.peer.server", "--port", str(port), "--dsn", dsn]
    command += ["--redis", redis_url, "--channel", f"kinline-bench-peer-{secrets.token_hex(4)}"]
    try:
        with os.fdopen(fd, "wb") as log:
            for _ in range(processes):
                server.processes.append(
                    await asyncio.create_subprocess_exec(
                        *command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=log
                    )
                )
        for process in server.processes:
            assert process.stdout is not None
            try:
                line = await asyncio.wait_for(process.stdout.readline(), timeout)
            except TimeoutError:
                line = b""
            if not line.startswith(b"ready"):
                raise RuntimeError(f"peer process {process.pid} did not start; {server.log_tail()}")
    except BaseException:
        await server.stop()
        raise
    return server
