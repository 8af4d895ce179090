"""``/metrics`` for the scraper, never for the public (issue 14: it used to be open).

Three ways in, in this order:

- ``KINLINE_METRICS_LISTEN=host:port``: a listener of its own (bind it to an address the
  public cannot reach, such as a private interface) that serves ``/metrics`` and nothing
  else. Each worker binds it with ``SO_REUSEPORT``; every worker's figures are in every
  answer (the multiprocess collector). The public port then answers 404 unless
  ``KINLINE_METRICS_TOKEN`` is given.
- ``KINLINE_METRICS_TOKEN``: the public port answers ``Authorization: Bearer <token>``.
- neither: a client on this machine only, and only one that came straight here: a proxy on
  this machine that is not among ``KINLINE_TRUSTED_PROXIES`` forwards the public from
  127.0.0.1, and says so with ``X-Forwarded-For``/``Forwarded``, so such a request is not
  taken for a local one.

Anyone else gets 404, as for a page that is not there.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from server import clients
from server.keys import SETTINGS

log = logging.getLogger(__name__)
FORWARDING = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def exposition() -> web.Response:
    """The Prometheus text of this process (of every worker, under ``kinline serve -w N``)."""
    registry = REGISTRY
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def allowed(request: web.Request) -> bool:
    """Whether this request to the public port may read the metrics (module docstring)."""
    settings = request.app[SETTINGS]
    if settings.metrics_token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {settings.metrics_token}".encode())
    if settings.metrics_listen:
        return False
    forwarded = any(name in request.headers for name in FORWARDING)
    if forwarded and not clients.from_trusted_proxy(request):
        return False  # an untrusted proxy on this machine forwarding someone
    return clients.is_loopback(request)


async def on_public_port(request: web.Request) -> web.Response:
    if not allowed(request):
        raise web.HTTPNotFound()
    return exposition()


async def _scrape(_: web.Request) -> web.Response:
    return exposition()


@contextlib.asynccontextmanager
async def listening(address: str) -> AsyncIterator[str | None]:
    """Serve ``/metrics`` alone on ``address`` (``host:port``; empty: nothing); yields the
    URL it serves."""
    if not address:
        yield None
        return
    host, _, port = address.rpartition(":")
    app = web.Application()
    app.router.add_get("/metrics", _scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]") or None, int(port), reuse_port=True)
    await site.start()
    log.info("metrics listening", extra={"address": address})
    try:
        yield f"http://{address}/metrics"
    finally:
        await runner.cleanup()
