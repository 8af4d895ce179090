"""Who is on the other end of a request: its address and whether it came over TLS.

Behind a reverse proxy or load balancer every request arrives from the proxy's address, so a
throttle keyed on it would lock every user out at once, and a cookie would never be marked
``Secure`` though the client used https. The proxy's ``X-Forwarded-For`` and
``X-Forwarded-Proto`` are believed only when the request comes from one of
``KINLINE_TRUSTED_PROXIES``; from anyone else they are ignored (a client could write any
address there). ``X-Forwarded-For`` is read from the right: the last address not itself a
trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from aiohttp import web

from server.keys import SETTINGS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in trusted)


def _trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def address(request: web.Request) -> str:
    """The client's address (the proxy's own when it is not trusted)."""
    networks = _networks(request.app[SETTINGS].trusted_proxies)
    remote = request.remote or "unknown"
    if not _trusted(remote, networks):
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else remote


def over_tls(request: web.Request) -> bool:
    """Whether the client used https: directly, by the public URL, or as a trusted proxy
    says."""
    settings = request.app[SETTINGS]
    if request.secure or settings.public_url.startswith("https://"):
        return True
    if _trusted(request.remote, _networks(settings.trusted_proxies)):
        return request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip() == "https"
    origins = settings.origins
    return bool(origins) and all(o.startswith("https://") for o in origins)


def from_trusted_proxy(request: web.Request) -> bool:
    """Whether the direct peer is one of ``KINLINE_TRUSTED_PROXIES``."""
    return _trusted(request.remote, _networks(request.app[SETTINGS].trusted_proxies))


def is_loopback(request: web.Request) -> bool:
    """Whether the client (behind trusted proxies, the real one) is this machine."""
    try:
        return ipaddress.ip_address(address(request)).is_loopback
    except ValueError:
        return False
