"""Where Redis is: one server (``redis://``) or the seed nodes of a Redis Cluster.

``KINLINE_REDIS_URL=redis+cluster://host:port[,host:port...]`` (``rediss+cluster://`` for TLS,
``user:password@`` before the first node for ACLs) names seed nodes of a cluster; the client
discovers the rest (CLUSTER SLOTS). Everything else is a plain redis-py URL of one server.

This module owns the parsing and the command clients of the small shared state (on-duty
presence, who is connected, per-process socket counts). On a cluster each of those
operations touches exactly one key, and the commands of one transaction (MULTI/EXEC) always
touch the same key, so no hash tag is needed: a prison's presence set or the socket-count hash
lives wherever its key hashes, and different prisons spread over the shards. A change that
ever puts two keys in one transaction must give them a common ``{hash tag}``. Topics (pub/sub)
are the broker's business: ``channels/broker_cluster.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import RedisClusterException, RedisError

__all__ = ["CLUSTER_SCHEMES", "REDIS_ERRORS", "ClusterTarget", "cluster_target", "command_client"]

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

REDIS_ERRORS = (RedisError, RedisClusterException, OSError, TimeoutError)
"""What a Redis or Redis Cluster call raises when the backend cannot answer. redis-py's cluster
errors (``RedisClusterUnreachableError``, ``SlotNotCoveredError``...) are not ``RedisError``s."""


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """The seed nodes of a Redis Cluster and how to authenticate to every node."""

    seeds: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False


def cluster_target(url: str) -> ClusterTarget | None:
    """The cluster ``url`` names, or None for a one-server URL. ``ValueError`` if malformed."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        return None
    rest = rest.split("/", 1)[0].split("?", 1)[0]
    username = password = None
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        user, has_password, secret = auth.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    seeds = []
    for node in rest.split(","):
        host, colon, port = node.strip().rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"cluster node {node.strip()!r} is not host:port")
        seeds.append((host.strip("[]"), int(port)))
    return ClusterTarget(tuple(seeds), username, password, scheme.lower() == "rediss+cluster")


def command_client(url: str, *, io_timeout: float = 5.0) -> Redis | RedisCluster:
    """A client for small keyed commands on ``url``: ``RedisCluster`` for a cluster URL.

    One retry on a connection error, as the one-server client has always had; on a cluster
    the retry also follows a failover (MOVED to the promoted replica refreshes the slot map).
    """
    target = cluster_target(url)
    if target is None:
        return Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 1),
            socket_connect_timeout=io_timeout,
            socket_timeout=io_timeout,
        )
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.seeds],
        username=target.username,
        password=target.password,
        ssl=target.tls,
        # Keep serving the shards that are up while one has no primary (failover under way).
        require_full_coverage=False,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        socket_connect_timeout=io_timeout,
        socket_timeout=io_timeout,
    )
