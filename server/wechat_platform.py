"""Calls to the WeChat Official Account platform's API (``KINLINE_WECHAT_API``).

Every call answers JSON with ``errcode`` (0 or absent: done). The access token comes from
``/cgi-bin/token`` with the app id and secret, is kept in storage for every process
(``storage.wechat.refresh_token``: one refresher at a time) and fetched again when the
platform says it is invalid or expired (40001, 40014, 42001), once per call.

``PlatformError.transient`` tells the outbox whether trying again later may help (the platform
busy, a network failure, a 5xx) or not (a user who unsubscribed, a template refused).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import aiohttp

from server.config import Settings
from storage import wechat
from storage.sql import Database, utcnow

TOKEN_INVALID = frozenset({40001, 40014, 42001})
OUT_OF_WINDOW = 45015  # "response out of time limit": the 48 hours since the user last wrote
BUSY = frozenset({-1, 45009, 45047})  # system busy, rate limits
TIMEOUT = aiohttp.ClientTimeout(total=10)


class PlatformError(Exception):
    def __init__(self, errcode: int, errmsg: str, *, transient: bool | None = None) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.transient = errcode in BUSY if transient is None else transient


class Platform:
    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db
        self._base = settings.wechat_api.rstrip("/")
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()  # one refresher per process; storage orders processes

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _call(
        self, method: str, path: str, *, params: dict[str, str], payload: object = None
    ) -> dict[str, Any]:
        try:
            async with self._session().request(
                method,
                self._base + path,
                params=params,
                data=None if payload is None else json.dumps(payload, ensure_ascii=False),
                headers=None if payload is None else {"Content-Type": "application/json"},
            ) as response:
                if response.status >= 500:
                    raise PlatformError(-1, f"HTTP {response.status}", transient=True)
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformError(-1, f"unreachable: {exc!r}", transient=True) from None
        try:
            answer = json.loads(text)
        except ValueError:
            raise PlatformError(-1, "not JSON", transient=True) from None
        if not isinstance(answer, dict):
            raise PlatformError(-1, "not a JSON object", transient=True)
        errcode = answer.get("errcode") or 0
        if errcode:
            raise PlatformError(int(errcode), str(answer.get("errmsg", "")))
        return answer

    async def _fetch_token(self) -> tuple[str, int]:
        answer = await self._call(
            "GET",
            "/cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": self._settings.wechat_appid,
                "secret": self._settings.wechat_secret,
            },
        )
        return str(answer["access_token"]), int(answer.get("expires_in", 7200))

    async def token(self, stale: str | None = None) -> str:
        appid = self._settings.wechat_appid
        if stale is None:
            cached = await wechat.cached_token(self._db, appid, utcnow())
            if cached is not None:
                return cached
        async with self._lock:
            return await wechat.refresh_token(
                self._db, appid, utcnow(), self._fetch_token, stale=stale
            )

    async def _with_token(self, path: str, payload: object) -> dict[str, Any]:
        token = await self.token()
        try:
            return await self._call("POST", path, params={"access_token": token}, payload=payload)
        except PlatformError as error:
            if error.errcode not in TOKEN_INVALID:
                raise
        token = await self.token(stale=token)
        return await self._call("POST", path, params={"access_token": token}, payload=payload)

    async def send_text(self, openid: str, text: str) -> None:
        """A customer-service text message (within 48 h of the user's last message)."""
        await self._with_token(
            "/cgi-bin/message/custom/send",
            {"touser": openid, "msgtype": "text", "text": {"content": text}},
        )

    async def send_template(self, openid: str, url: str, data: dict[str, str]) -> None:
        """A template message (no time window): ``data`` fills the template's fields."""
        await self._with_token(
            "/cgi-bin/message/template/send",
            {
                "touser": openid,
                "template_id": self._settings.wechat_template_id,
                "url": url,
                "data": {key: {"value": value} for key, value in data.items()},
            },
        )

    async def openid_for(self, code: str) -> str:
        """The OpenID a web authorization ``code`` (snsapi_base) stands for."""
        answer = await self._call(
            "GET",
            "/sns/oauth2/access_token",
            params={
                "appid": self._settings.wechat_appid,
                "secret": self._settings.wechat_secret,
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        openid = answer.get("openid")
        if not isinstance(openid, str) or not openid:
            raise PlatformError(40029, "no openid for this code")
        return openid

    async def _media_once(self, token: str, media_id: str, limit: int) -> bytes:
        try:
            async with self._session().get(
                self._base + "/cgi-bin/media/get",
                params={"access_token": token, "media_id": media_id},
            ) as response:
                if response.status >= 500:
                    raise PlatformError(-1, f"HTTP {response.status}", transient=True)
                data = await response.content.read(limit + 1)
                kind = response.content_type
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformError(-1, f"unreachable: {exc!r}", transient=True) from None
        if kind in ("application/json", "text/plain"):  # an error, as JSON
            try:
                answer = json.loads(data)
            except ValueError:
                raise PlatformError(-1, "not JSON", transient=True) from None
            errcode = int(answer.get("errcode") or -1) if isinstance(answer, dict) else -1
            raise PlatformError(errcode, str(answer.get("errmsg", "")) if errcode else "")
        if len(data) > limit:
            raise PlatformError(-2, f"the file exceeds {limit} bytes", transient=False)
        return data

    async def media(self, media_id: str, limit: int) -> bytes:
        """A temporary media file a user sent (``/cgi-bin/media/get``: an image message's
        ``MediaId``), at most ``limit`` bytes."""
        token = await self.token()
        try:
            return await self._media_once(token, media_id, limit)
        except PlatformError as error:
            if error.errcode not in TOKEN_INVALID:
                raise
        return await self._media_once(await self.token(stale=token), media_id, limit)

    async def create_menu(self, menu: dict[str, Any]) -> None:
        await self._with_token("/cgi-bin/menu/create", menu)


def signed_in_url(settings: Settings, page: str) -> str:
    """A link that passes through the platform's web authorization (snsapi_base) so that
    ``/app`` opens with a ``code`` it can bind with (``POST /api/v1/wechat/bind``)."""
    query = urlencode(
        {
            "appid": settings.wechat_appid,
            "redirect_uri": f"{settings.public_base}{page}",
            "response_type": "code",
            "scope": "snsapi_base",
            "state": "bind",
        }
    )
    return f"{settings.wechat_oauth}?{query}#wechat_redirect"


def menu(settings: Settings) -> dict[str, Any]:
    """The account's menu: chat (signing in through web authorization), the inmate's
    information, visits, and the prison's public page."""
    base = settings.public_base
    return {
        "button": [
            {"type": "view", "name": "在线咨询", "url": signed_in_url(settings, "/app")},
            {"type": "view", "name": "服刑人员信息", "url": f"{base}/app#/info"},
            {"type": "view", "name": "会见预约", "url": f"{base}/app#/visits"},
            {"type": "view", "name": "监狱信息", "url": f"{base}/app#/prisons"},
        ]
    }
