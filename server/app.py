"""The aiohttp application: resources as cleanup contexts, routes, middleware.

Each resource (store, broker + hub, gateway) is one async generator that sets up and tears
down, in order; ``on_shutdown`` drains in-flight sends and closes sockets with 1012.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from channels import metrics
from channels.broker import Broker
from channels.broker_memory import MemoryBroker
from channels.hub import Hub
from channels.presence import MemoryPresence, Presence
from server import assets, faults, health, scrape
from server.anchoring import anchoring
from server.api import add_routes
from server.api.security import cookie_origin_guard
from server.attachment_sweep import sweeping
from server.codes import Codes
from server.config import Settings
from server.duty import DutyRoster
from server.errors import error_response, errors_and_headers, guards_itself, oversize_guard, secured
from server.gateway import Gateway
from server.heartbeat import beating
from server.holds import releasing_stale_holds
from server.keys import (
    BROKER,
    CODES,
    DB,
    GATEWAY,
    HUB,
    KEYWORDS,
    OBJECTS,
    PLATFORM,
    PUSH,
    RELAY,
    ROSTER,
    ROUTER,
    SEND_PATH,
    SETTINGS,
    SMS,
)
from server.keywords import LiveKeywords
from server.online import Online
from server.outbox import Relay
from server.push import Push, generate_key
from server.ratelimit import RateLimiter
from server.rebalance import rebalancing
from server.retention import applying_retention
from server.routing import routing_questions
from server.sending import SendPath
from server.sms import make_sms
from server.wechat import add_routes as wechat_routes
from server.wechat_platform import Platform
from storage import open_database
from storage.group_commit import GroupCommit
from storage.objects import open_objects
from storage.sql import Database


async def _storage(app: web.Application) -> AsyncIterator[None]:
    if DB not in app:
        app[DB] = await open_database(app[SETTINGS].database_url)
        await app[DB].migrate()
        yield
        await app[DB].close()
    else:
        yield  # given by the caller (tests), closed by the caller


def make_broker(settings: Settings) -> Broker:
    if settings.redis_url:
        from channels.broker_cluster import RedisClusterBroker
        from channels.broker_redis import RedisBroker
        from channels.redis_target import cluster_target

        if cluster_target(settings.redis_url) is not None:
            return RedisClusterBroker(settings.redis_url, channel_prefix=settings.redis_prefix)
        return RedisBroker(settings.redis_url, channel_prefix=settings.redis_prefix)
    return MemoryBroker()


def _observe_batch(size: int, seconds: float) -> None:
    metrics.commit_batch_size.observe(size)
    metrics.commit_seconds.observe(seconds)


def make_presence(settings: Settings) -> Presence:
    if settings.redis_url:
        from channels.presence import RedisPresence

        return RedisPresence(settings.redis_url, key_prefix=f"{settings.redis_prefix}presence:")
    return MemoryPresence()


async def _realtime(app: web.Application) -> AsyncIterator[None]:
    settings, store = app[SETTINGS], app[DB]
    broker = app[BROKER] = make_broker(settings)
    hub = app[HUB] = Hub(broker, store)
    await broker.start()
    await hub.start()
    commit = GroupCommit(store, on_batch=_observe_batch, is_unavailable=faults.unavailable)
    limiter = RateLimiter(settings.send_rate, settings.send_burst)
    send_path = app[SEND_PATH] = SendPath(
        store, commit, hub, limiter, max_attachments=settings.max_attachments
    )
    live_keywords = app[KEYWORDS] = LiveKeywords(store, hub, check_every=settings.keyword_check)
    await live_keywords.start()
    send_path.keywords = live_keywords
    roster = app[ROSTER] = DutyRoster(
        make_presence(settings),
        hub,
        store,
        ttl=settings.presence_ttl,
        interval=settings.presence_ttl / 3,
    )
    await roster.start()
    app[GATEWAY] = Gateway(settings, store, hub, send_path, roster)
    app[GATEWAY].start()
    yield
    await live_keywords.close()
    await roster.close()
    await hub.close()
    await broker.close()


async def _outreach(app: web.Application) -> AsyncIterator[None]:
    """Reaching relatives outside the page: the WeChat platform client (when the channel is
    on), Web Push, SMS, who is connected, and the outbox relay (server/outbox.py)."""
    settings, store, gateway = app[SETTINGS], app[DB], app[GATEWAY]
    platform = None
    if settings.wechat_enabled:
        platform = app[PLATFORM] = Platform(settings, store)
    push = app[PUSH] = Push(settings, settings.vapid_key or generate_key())
    presence = make_presence(
        dataclasses.replace(settings, redis_prefix=f"{settings.redis_prefix}online:")
    )
    online = Online(presence, gateway.sockets.user_ids, ttl=settings.presence_ttl)
    online.start()
    gateway.online = online
    sms = app[SMS] = make_sms(settings.sms_url)
    app[CODES] = Codes(store, sms, settings)
    relay = app[RELAY] = Relay(settings, store, online, sms, platform=platform, push=push)
    app[SEND_PATH].on_stored = lambda message: (
        relay.wake() if message.kind == "text" and message.sender_role == "officer" else None
    )
    relay.start()
    yield
    await relay.close()
    await online.close()
    await sms.close()
    await push.close()
    if platform is not None:
        await platform.close()


async def _retention(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with applying_retention(app[DB], settings.retention_years, settings.retention_archive):
        yield


async def _files(app: web.Application) -> AsyncIterator[None]:
    """The object store of attachments (issue 18), and its sweep."""
    settings = app[SETTINGS]
    if OBJECTS not in app:
        app[OBJECTS] = await open_objects(
            settings.files, endpoint=settings.s3_endpoint, region=settings.s3_region
        )
    objects = app[OBJECTS]
    async with sweeping(
        app[DB], objects, settings.unsent_attachment_hours, settings.attachment_sweep_interval
    ):
        yield
    await objects.close()


async def _anchoring(app: web.Application) -> AsyncIterator[None]:
    async with anchoring(app[DB]):
        yield


async def _holds(app: web.Application) -> AsyncIterator[None]:
    async with releasing_stale_holds(app, app[SETTINGS], app[DB], app[ROSTER]):
        yield


async def _routing(app: web.Application) -> AsyncIterator[None]:
    async with routing_questions(
        app, app[SETTINGS], app[DB], app[ROSTER], app[SEND_PATH]
    ) as router:
        app[ROUTER] = router
        yield


async def _heartbeats(app: web.Application) -> AsyncIterator[None]:
    async with beating(app[SETTINGS].heartbeat, app[GATEWAY].sockets.all):
        yield


async def _rebalancing(app: web.Application) -> AsyncIterator[None]:
    async with rebalancing(app[SETTINGS], app[GATEWAY]):
        yield


async def _on_shutdown(app: web.Application) -> None:
    await app[GATEWAY].shutdown()


async def _readyz(request: web.Request) -> web.Response:
    ready, checks = await health.readiness(request.app[DB], request.app[BROKER])
    return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)


async def _scraping(app: web.Application) -> AsyncIterator[None]:
    async with scrape.listening(app[SETTINGS].metrics_listen):
        yield


@guards_itself  # no frame of errors_and_headers kept for a socket's life
async def _websocket(request: web.Request) -> web.StreamResponse:
    try:
        response = await request.app[GATEWAY].handle(request)
    except Exception as exc:
        response = error_response(request, exc)
    return secured(response)


def build_app(settings: Settings, *, store: Database | None = None) -> web.Application:
    app = web.Application(
        middlewares=[
            errors_and_headers,
            oversize_guard(
                settings.max_request_bytes,
                settings.max_upload_bytes,
                attachment_bytes=settings.max_attachment_bytes,
            ),
            cookie_origin_guard(settings),
        ],
        client_max_size=settings.max_request_bytes,
    )
    app[SETTINGS] = settings
    faults.fold_driver_logs()  # the driver's own outage warnings: once per episode, no traceback
    if store is not None:
        app[DB] = store
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_realtime)
    app.cleanup_ctx.append(_heartbeats)  # one sweep pings every socket, cuts the silent ones
    app.cleanup_ctx.append(_outreach)  # WeChat, Web Push, SMS and the outbox
    app.cleanup_ctx.append(_rebalancing)  # a process holding too many sockets sheds some
    app.cleanup_ctx.append(_retention)  # message text past KINLINE_RETENTION_YEARS, daily
    app.cleanup_ctx.append(_files)  # attachments' object store and sweep
    app.cleanup_ctx.append(_anchoring)  # the hash chains' heads, anchored daily
    app.cleanup_ctx.append(_holds)  # a holder disconnected past the grace loses its threads
    app.cleanup_ctx.append(_routing)  # auto-assignment and the away reply
    app.cleanup_ctx.append(_scraping)  # /metrics on a listener of its own, when configured
    app.on_shutdown.append(_on_shutdown)
    # web/: compressed, fingerprinted, cached for good (server/assets.py); the pages, the
    # manifest and the service worker at addresses of their own, revalidated on every load
    web_files = assets.Assets(Path(settings.web_dir))
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", scrape.on_public_port)  # or KINLINE_METRICS_LISTEN
    app.router.add_get("/ws", _websocket)
    app.router.add_get("/", assets.file_handler(web_files, "index.html"))
    for name in ("app", "console", "monitor", "admin"):
        app.router.add_get(f"/{name}", assets.file_handler(web_files, f"{name}.html"))
    app.router.add_get("/favicon.ico", assets.file_handler(web_files, "favicon.svg"))
    app.router.add_get(
        "/manifest.webmanifest", assets.file_handler(web_files, "manifest.webmanifest")
    )
    # at the root, so its scope covers /app; never cached, so an update is seen at once
    app.router.add_get("/sw.js", assets.file_handler(web_files, "sw.js"))
    assets.add_routes(app, web_files)
    add_routes(app)  # /api/v1 (server/api)
    wechat_routes(app)  # /wechat, when the channel is on
    return app
