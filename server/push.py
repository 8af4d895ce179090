"""Web Push (RFC 8030) with VAPID (RFC 8292) and encrypted payloads (RFC 8291, aes128gcm),
through pywebpush, for the installable relative app.

- The VAPID key pair is one per deployment, kept like the secret: ``KINLINE_VAPID_KEY`` (PEM)
  or ``var/vapid.pem``, generated once (``server.config.with_vapid``); the public key is what
  the app subscribes with (``GET /api/v1/push/key``).
- A subscription's endpoint must be an https URL on a public host name (no IP literal of a
  private, loopback or link-local range, no ``localhost``), unless it starts with one of
  ``KINLINE_PUSH_ENDPOINTS`` (tests list their local push service). Names are not resolved
  here; a deployment that fears DNS tricks puts the sender behind an egress proxy.
- A push service answering 404 or 410 says the subscription is gone: it is removed.
  429 and 5xx (and an unreachable service) are worth trying again later; other refusals are
  not.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02  # type: ignore[import-untyped]
from pywebpush import WebPushException, webpush_async  # type: ignore[import-untyped]

from server.config import Settings
from storage.outbox import PushDevice

TIMEOUT = aiohttp.ClientTimeout(total=10)


class PushFailed(Exception):
    def __init__(self, detail: str, *, transient: bool) -> None:
        super().__init__(detail)
        self.transient = transient


def generate_key() -> str:
    """A new VAPID private key, PEM."""
    vapid = Vapid02()
    vapid.generate_keys()
    pem: bytes = vapid.private_pem()
    return pem.decode()


def _under(endpoint: str, prefix: str) -> bool:
    """``endpoint`` is ``prefix`` or below it: a prefix ``http://127.0.0.1:9`` allows
    ``http://127.0.0.1:9/push/1`` and not ``http://127.0.0.1:90/`` (nor a longer host name);
    one ending in ``/`` or ``:`` is a plain prefix (``http://127.0.0.1:``: any port there)."""
    if not endpoint.startswith(prefix):
        return False
    rest = endpoint[len(prefix) :]
    return prefix.endswith(("/", ":")) or not rest or rest[0] in "/?#"


def endpoint_allowed(settings: Settings, endpoint: str) -> bool:
    if any(_under(endpoint, prefix) for prefix in settings.push_endpoints):
        return True
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if parts.scheme != "https" or not host or parts.username or parts.password:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host and host != "localhost" and not host.endswith(".localhost")
    return address.is_global


class Push:
    def __init__(self, settings: Settings, key_pem: str) -> None:
        self._settings = settings
        self._vapid = Vapid02.from_pem(key_pem.encode())
        self._http: aiohttp.ClientSession | None = None

    @property
    def public_key(self) -> str:
        """The application server key, base64url without padding (the browser's
        ``applicationServerKey``)."""
        raw = self._vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def send(self, device: PushDevice, payload: dict[str, str]) -> Literal["ok", "gone"]:
        """Push ``payload`` (JSON, encrypted for the device) to one device."""
        info = {"endpoint": device.endpoint, "keys": {"p256dh": device.p256dh, "auth": device.auth}}
        try:
            response = await webpush_async(
                info,
                json.dumps(payload, ensure_ascii=False),
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._settings.vapid_subject},
                ttl=24 * 3600,
                aiohttp_session=self._session(),
            )
        except WebPushException as exc:
            status = exc.status_code or 0
            if status in (404, 410):
                return "gone"
            raise PushFailed(
                f"push service answered {status}", transient=status == 429 or status >= 500
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PushFailed(f"push service unreachable: {exc!r}", transient=True) from None
        except ValueError as exc:  # keys that are not a P-256 point / 16-byte secret
            raise PushFailed(
                f"the subscription's keys are unusable: {exc}", transient=False
            ) from None
        if isinstance(response, aiohttp.ClientResponse):
            response.release()
        return "ok"
