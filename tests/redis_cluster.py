"""A real Redis Cluster for the tests: six ``redis-server`` processes on loopback ports.

Three primaries and three replicas, created with ``redis-cli --cluster create`` in a temporary
directory. Only the processes started here are ever signalled (by their own ``Popen``), and
``stop()`` waits for each of them. A short ``cluster-node-timeout`` keeps failovers quick.
Outside CI a missing ``redis-server`` skips with a loud reason; with ``CI=true`` it fails.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis

from tests.services import missing

NODE_TIMEOUT_MS = 1000


def _free_cluster_port() -> int:
    """A loopback port free for the node and for its cluster bus (port + 10000)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]

    def client(self) -> Redis:
        return Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class LocalCluster:
    """Six nodes; ``url`` is the ``redis+cluster://`` URL Kinline is given."""

    directory: Path
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(n.address for n in self.nodes[:3])

    async def start(self) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            missing("redis-server", "PATH", "redis-server or redis-cli not installed")
        assert server is not None and cli is not None
        for _ in range(6):
            port = _free_cluster_port()
            log = open(self.directory / f"{port}.log", "wb")  # noqa: SIM115 (closed by the child's end)
            process = subprocess.Popen(
                [
                    server,
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--dir", str(self.directory),
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{port}.conf",
                    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                    "--cluster-require-full-coverage", "no",
                    "--cluster-replica-validity-factor", "0",
                    "--save", "",
                    "--appendonly", "no",
                    "--protected-mode", "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )  # fmt: skip
            log.close()
            self.nodes.append(Node(port, process))
        for node in self.nodes:
            await self._until_answers(node)
        addresses = [n.address for n in self.nodes]
        created = await asyncio.to_thread(
            subprocess.run,
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout!r}")
        await self.until_healthy()

    async def _until_answers(self, node: Node) -> None:
        client = node.client()
        try:
            for _ in range(200):  # bounded: 200 x 25 ms
                if node.process.poll() is not None:
                    raise RuntimeError(f"redis-server on {node.port} exited")
                try:
                    await client.ping()
                    return
                except OSError:
                    pass
                except Exception as exc:  # ConnectionError is a RedisError, not an OSError
                    if "connect" not in str(exc).lower():
                        raise
                await asyncio.sleep(0.025)
        finally:
            await client.aclose()
        raise TimeoutError(f"redis-server on {node.port} does not answer")

    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.process.poll() is None]

    async def roles(self) -> dict[int, str]:
        """``port -> "master" | "slave"`` of every live node, as each says of itself."""
        found = {}
        for node in self.alive():
            client = node.client()
            try:
                info = await client.info("replication")
            finally:
                await client.aclose()
            found[node.port] = str(info["role"])
        return found

    async def until_healthy(self, primaries: int = 3, timeout: float = 60) -> None:
        """Every live node sees all slots served and three primaries with a synced replica."""
        async with asyncio.timeout(timeout):
            while not await self._healthy(primaries):
                await asyncio.sleep(0.1)

    async def _healthy(self, primaries: int) -> bool:
        masters = 0
        for node in self.alive():
            client = node.client()
            try:
                cluster = await client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
                info = await client.info("replication")
            finally:
                await client.aclose()
            text = cluster.decode() if isinstance(cluster, bytes) else str(cluster)
            if "cluster_state:ok" not in text or "cluster_slots_ok:16384" not in text:
                return False
            if info["role"] == "master":
                masters += 1
            elif info.get("master_link_status") != "up":
                return False
        return masters == primaries

    async def primary_with_replica(self) -> tuple[Node, Node]:
        """A primary and the replica that follows it."""
        by_port = {n.port: n for n in self.alive()}
        for node in self.alive():
            client = node.client()
            try:
                info = await client.info("replication")
            finally:
                await client.aclose()
            if info["role"] == "slave":
                return by_port[int(info["master_port"])], node
        raise AssertionError("no replica found")

    def kill(self, node: Node) -> None:
        """SIGKILL one node started here (no goodbye to its clients or peers)."""
        node.process.kill()
        node.process.wait(10)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            try:
                node.process.wait(10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


async def local_cluster() -> LocalCluster:
    """A started cluster in a fresh temporary directory (the caller stops it)."""
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="kinline-cluster-")))
    try:
        await cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
