"""A relative's ways of being told outside the page: its WeChat binding, its Web Push
devices and its choice of channel (DESIGN.md section 8).

- ``GET /wechat/bind``: the binding (the OpenID's last characters, since when) and the URL
  that starts the platform's web authorization (snsapi_base), which comes back to
  ``/app?code=...&state=bind``; ``POST /wechat/bind {code}`` exchanges the code for the
  OpenID (``/sns/oauth2/access_token``) and binds it; ``DELETE`` ends it. Audited
  (``storage.wechat``). With the WeChat channel off these answer 404 ``not_found``.
- A code the platform does not accept is 400 ``invalid_code``; an OpenID already bound to
  another relative is 409 ``conflict``; the platform unreachable is 503 ``unavailable``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from server.api.base import ApiError, Route, body, principal, reply
from server.app import PLATFORM, SETTINGS, STORE
from server.policy import check_action
from server.wechat_platform import PlatformError
from storage import wechat
from storage.base import Conflict
from storage.sql import utcnow

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_\-]+$")]


class BindBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Code


class BindingOut(msgspec.Struct, frozen=True):
    bound: bool
    authorize_url: str
    openid: str | None = None  # masked: its last four characters
    bound_at: datetime | None = None


def _channel_on(request: web.Request) -> None:
    if PLATFORM not in request.app:
        raise ApiError(404, "not_found", "the WeChat channel is off")


def authorize_url(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    query = urlencode(
        {
            "appid": settings.wechat_appid,
            "redirect_uri": f"{settings.public_base}/app",
            "response_type": "code",
            "scope": "snsapi_base",
            "state": "bind",
        }
    )
    return f"{settings.wechat_oauth}?{query}#wechat_redirect"


def _out(request: web.Request, binding: wechat.Binding | None) -> BindingOut:
    if binding is None:
        return BindingOut(False, authorize_url(request))
    return BindingOut(True, authorize_url(request), wechat.masked(binding.openid), binding.bound_at)


async def show_binding(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    _channel_on(request)
    return reply(_out(request, await wechat.binding_of(request.app[STORE].db, who.id)))


async def bind(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    _channel_on(request)
    form = await body(request, BindBody)
    try:
        openid = await request.app[PLATFORM].openid_for(form.code)
    except PlatformError as error:
        if error.transient:
            raise ApiError(503, "unavailable", "WeChat cannot be reached; try again") from None
        raise ApiError(400, "invalid_code", f"WeChat refused the code: {error}") from None
    try:
        binding = await wechat.bind(request.app[STORE].db, who.id, openid, utcnow())
    except Conflict:
        raise ApiError(
            409, "conflict", "this WeChat account is bound to another relative"
        ) from None
    return reply(_out(request, binding))


async def unbind(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    _channel_on(request)
    await wechat.unbind(request.app[STORE].db, who.id, utcnow())
    return reply(_out(request, None))


ROUTES = [
    Route(
        "GET",
        "/wechat/bind",
        show_binding,
        "The relative's WeChat binding and the URL that starts binding inside WeChat",
        "relative (own)",
        reply=BindingOut,
        errors=(401, 403, 404),
    ),
    Route(
        "POST",
        "/wechat/bind",
        bind,
        "Bind the OpenID of a web authorization code (snsapi_base) to the relative; audited",
        "relative (own)",
        body=BindBody,
        reply=BindingOut,
        errors=(400, 401, 403, 404, 409, 503),
    ),
    Route(
        "DELETE",
        "/wechat/bind",
        unbind,
        "End the relative's WeChat binding; audited",
        "relative (own)",
        reply=BindingOut,
        errors=(401, 403, 404),
    ),
]
