"""``/healthz``: the process is up. ``/readyz``: storage (and the broker, when there is one)
answer; 503 names the one that does not."""

from __future__ import annotations

import asyncio

from aiohttp import web

from channels.broker import Broker, BrokerUnavailable
from server import faults
from storage.errors import StoreUnavailable
from storage.sql import Database

CHECK_TIMEOUT = 2.0


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check(probe: object) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)  # type: ignore[arg-type]
    except (StoreUnavailable, BrokerUnavailable, TimeoutError, OSError):
        return "unavailable"
    return "ok"


async def readiness(store: Database, broker: Broker | None) -> tuple[bool, dict[str, str]]:
    checks = {"storage": await _check(store.ping())}
    if checks["storage"] == "ok":
        faults.STORAGE.recovered()  # ends an outage episode (logged once)
    if broker is not None:
        checks["broker"] = await _check(broker.ping())
    return all(v == "ok" for v in checks.values()), checks
