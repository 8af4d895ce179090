"""Fakes of the outside world on loopback, built from the platforms' public documentation:
the WeChat Official Account API, a Web Push service (RFC 8030/8291: it decrypts what it is
sent) and an SMS gateway; and messages built and signed as the WeChat platform builds them.

Each fake records every call and can fail on demand (``fail(path, times, ...)``); tests wait
for calls with ``until`` (an asyncio condition, never a sleep).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

TOKEN = "kinline-test-token"
APPID = "wx0123456789abcdef"
SECRET = "app-secret"
AES_KEY = base64.b64encode(b"k" * 32).decode().rstrip("=")  # 43 characters


@dataclass
class Call:
    path: str
    query: dict[str, str]
    body: Any
    raw: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Recorder:
    """Calls by path, waited on with a condition; failures queued per path."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._changed = asyncio.Condition()
        self._failures: dict[str, deque[tuple[int, Any]]] = defaultdict(deque)

    def fail(self, path: str, times: int, status: int = 200, answer: Any = None) -> None:
        """The next ``times`` calls of ``path`` answer ``status`` with ``answer``."""
        for _ in range(times):
            self._failures[path].append((status, answer))

    def of(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    async def record(self, call: Call) -> tuple[int, Any] | None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        queue = self._failures.get(call.path)
        return queue.popleft() if queue else None

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)


class FakeWeChat(Recorder):
    """``/cgi-bin/token``, ``/cgi-bin/message/custom/send``, ``/cgi-bin/message/template/send``,
    ``/sns/oauth2/access_token``, ``/cgi-bin/menu/create``, ``/cgi-bin/media/get`` (the files
    in ``media``): answers as the platform does. ``/connect/oauth2/authorize`` is the web
    authorization page (its host is another in production: ``KINLINE_WECHAT_OAUTH``), which
    for ``snsapi_base`` sends the browser of ``browser_openid`` straight back with a code."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: dict[str, str] = {}  # web authorization code -> openid
        self.tokens: set[str] = set()
        self.url = ""
        self.media: dict[str, tuple[bytes, str]] = {}  # temporary media: id -> (bytes, type)
        self.browser_openid = ""  # the WeChat user whose browser visits the authorize page

    def code_for(self, openid: str) -> str:
        code = secrets.token_hex(8)
        self.codes[code] = openid
        return code

    def revoke_tokens(self) -> None:
        """Every token issued so far is now invalid (errcode 40001 on use)."""
        self.tokens.clear()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        payload = json.loads(raw) if raw else None
        call = Call(request.path, dict(request.query), payload, raw, dict(request.headers))
        failure = await self.record(call)
        if failure is not None:
            status, answer = failure
            return web.json_response(
                answer or {"errcode": -1, "errmsg": "system error"}, status=status
            )
        path, q = request.path, request.query
        if path == "/connect/oauth2/authorize":  # snsapi_base: silent, straight back with a code
            if q.get("appid") != APPID or q.get("scope") != "snsapi_base":
                return web.Response(status=400, text="bad authorization request")
            back = f"{q['redirect_uri']}?code={self.code_for(self.browser_openid)}"
            raise web.HTTPFound(f"{back}&state={q.get('state', '')}")
        if path == "/cgi-bin/token":
            if q.get("appid") != APPID or q.get("secret") != SECRET:
                return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
            token = secrets.token_hex(16)
            self.tokens.add(token)
            return web.json_response({"access_token": token, "expires_in": 7200})
        if path == "/sns/oauth2/access_token":
            openid = self.codes.pop(q.get("code", ""), None)
            if openid is None or q.get("secret") != SECRET:
                return web.json_response({"errcode": 40029, "errmsg": "invalid code"})
            return web.json_response(
                {
                    "access_token": "web",
                    "expires_in": 7200,
                    "refresh_token": "r",
                    "openid": openid,
                    "scope": "snsapi_base",
                }
            )
        if q.get("access_token") not in self.tokens:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if path == "/cgi-bin/media/get":  # the file itself, or an error as JSON
            found = self.media.get(q.get("media_id", ""))
            if found is None:
                return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
            data, kind = found
            return web.Response(
                body=data,
                content_type=kind,
                headers={"Content-Disposition": 'attachment; filename="media.jpg"'},
            )
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class FakeSms(Recorder):
    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        failure = await self.record(Call(request.path, dict(request.query), json.loads(raw), raw))
        if failure is not None:
            return web.json_response(failure[1] or {}, status=failure[0])
        return web.json_response({"ok": True})


@asynccontextmanager
async def serve(fake: Recorder) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)  # type: ignore[attr-defined]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    if isinstance(fake, FakeWeChat | FakePushService):
        fake.url = url
    try:
        yield url
    finally:
        await runner.cleanup()


# messages as the platform builds them


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def text_xml(openid: str, content: str, msg_id: int, to: str = "gh_kinline") -> str:
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def event_xml(openid: str, event: str, to: str = "gh_kinline") -> str:
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event></xml>"
    )


def image_xml(openid: str, msg_id: int, media_id: str = "m") -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_kinline]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
        f"<PicUrl><![CDATA[http://127.0.0.1/p.jpg]]></PicUrl>"
        f"<MediaId><![CDATA[{media_id}]]></MediaId>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def voice_xml(openid: str, msg_id: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_kinline]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
        f"<MediaId><![CDATA[v]]></MediaId><Format><![CDATA[amr]]></Format>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def signed_query(
    token: str = TOKEN, *, timestamp: int | None = None, **extra: str
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(5)
    return {"signature": sign(token, stamp, nonce), "timestamp": stamp, "nonce": nonce, **extra}


def encrypt(xml: str, *, key: str = AES_KEY, appid: str = APPID) -> str:
    """The platform's safe-mode ciphertext: AES-256-CBC (IV = the key's first 16 bytes) of
    16 random bytes, the length (network order), the XML and the app id, PKCS#7 to 32."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    raw_key = base64.b64decode(key + "=")
    data = xml.encode()
    plain = secrets.token_bytes(16) + len(data).to_bytes(4, "big") + data + appid.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(raw_key), modes.CBC(raw_key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def decrypt(encrypted: str, *, key: str = AES_KEY) -> tuple[str, str]:
    """(XML, app id) of a safe-mode ciphertext."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    raw_key = base64.b64decode(key + "=")
    decryptor = Cipher(algorithms.AES(raw_key), modes.CBC(raw_key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    plain = plain[: -plain[-1]]
    length = int.from_bytes(plain[16:20], "big")
    return plain[20 : 20 + length].decode(), plain[20 + length :].decode()


def safe_request(xml: str, token: str = TOKEN, **options: str) -> tuple[dict[str, str], str]:
    """The query and body of a safe-mode POST carrying ``xml``."""
    encrypted = encrypt(xml, **options)
    query = signed_query(token)
    query["encrypt_type"] = "aes"
    query["msg_signature"] = sign(token, query["timestamp"], query["nonce"], encrypted)
    body = (
        "<xml><ToUserName><![CDATA[gh_kinline]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    return query, body


def wechat_url(base: str, query: dict[str, str]) -> str:
    return f"{base}/wechat?{urlencode(query)}"


# Web Push: a device's keys, and a push service that decrypts what it is sent


@dataclass
class Device:
    """A browser's push subscription: a P-256 key pair and a 16-byte auth secret."""

    endpoint: str
    private_key: Any
    auth: bytes

    @property
    def subscription(self) -> dict[str, Any]:
        from cryptography.hazmat.primitives import serialization

        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakePushService(Recorder):
    """Endpoints ``/push/{name}``: checks the VAPID header (RFC 8292: a JWT signed by the
    application server key, ``k=`` that key), decrypts the aes128gcm body (RFC 8291) with the
    device's keys, and records the plaintext. ``gone`` endpoints answer 410."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.devices: dict[str, Device] = {}
        self.gone: set[str] = set()
        self.received: list[tuple[str, dict[str, Any]]] = []  # (device name, payload)

    def device(self, name: str) -> Device:
        from cryptography.hazmat.primitives.asymmetric import ec

        made = Device(
            f"{self.url}/push/{name}",
            ec.generate_private_key(ec.SECP256R1()),
            secrets.token_bytes(16),
        )
        self.devices[name] = made
        return made

    @staticmethod
    def check_vapid(authorization: str) -> str:
        """The ``k`` of a valid ``vapid t=..., k=...`` header (raises if invalid)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        scheme, _, params = authorization.partition(" ")
        assert scheme == "vapid", authorization
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        header, claims, signature = fields["t"].split(".")
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        raw = unb64url(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        key.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        assert json.loads(unb64url(claims))["exp"] > time.time()
        return fields["k"]

    async def handle(self, request: web.Request) -> web.Response:
        import http_ece  # type: ignore[import-untyped]

        raw = await request.read()
        name = request.path.rsplit("/", 1)[-1]
        call = Call(request.path, dict(request.query), None, raw, dict(request.headers))
        failure = await self.record(call)
        if failure is not None:
            return web.Response(status=failure[0])
        if name in self.gone:
            return web.Response(status=410)
        self.check_vapid(request.headers["Authorization"])
        assert request.headers["Content-Encoding"] == "aes128gcm"
        device = self.devices[name]
        plain = http_ece.decrypt(
            raw, private_key=device.private_key, auth_secret=device.auth, version="aes128gcm"
        )
        async with self._changed:
            self.received.append((name, json.loads(plain)))
            self._changed.notify_all()
        return web.Response(status=201)
