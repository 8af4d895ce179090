"""A relative's ways of being told outside the page: its WeChat binding, its Web Push
devices and its choice of channel (DESIGN.md section 8).

- ``GET /wechat/bind``: the binding (the OpenID's last characters, since when) and the URL
  that starts the platform's web authorization (snsapi_base), which comes back to
  ``/app?code=...&state=bind``; ``POST /wechat/bind {code}`` exchanges the code for the
  OpenID (``/sns/oauth2/access_token``) and binds it; ``DELETE`` ends it. Audited
  (``storage.wechat``). ``POST /wechat/signin {code}`` signs in the relative bound to the
  code's OpenID (``sign_in``). With the WeChat channel off these answer 404 ``not_found``.
- A code the platform does not accept is 400 ``invalid_code``; an OpenID already bound to
  another relative is 409 ``conflict``; the platform unreachable is 503 ``unavailable``.
- ``GET /push/key``: the VAPID public key; ``POST /push/subscriptions {endpoint, keys:
  {p256dh, auth}}`` subscribes a device (201; an endpoint that is not https on a public host,
  nor under ``KINLINE_PUSH_ENDPOINTS``, is 400 ``endpoint_refused``); ``DELETE
  /push/subscriptions {endpoint}`` removes it.
- ``GET``/``PUT /notifications {channel}``: how the relative is told when it is not
  connected: ``auto`` (WeChat when bound, else Web Push), ``wechat``, ``push``, ``sms`` or
  ``none`` (opted out); with the devices and binding it has.
- ``GET /conversations/{id}/deliveries``: per message, whether and how the notification
  reached the relative (``wechat``, ``template``, ``push``, ``sms``), or why not, and its
  attempts; for whoever may read the conversation (it carries no message text).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from server.api.auth import LoggedIn, signed_in
from server.api.base import ApiError, Route, body, path_id, principal, reply
from server.keys import DB, PLATFORM, PUSH, SETTINGS
from server.policy import Denied, check_action, check_conversation, history_floor
from server.push import endpoint_allowed
from server.wechat_platform import PlatformError, signed_in_url
from storage import accounts, conversations, messages, outbox, wechat
from storage.errors import Conflict, NotFound
from storage.outbox import Channel
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
    return signed_in_url(request.app[SETTINGS], "/app")


def _out(request: web.Request, binding: wechat.Binding | None) -> BindingOut:
    if binding is None:
        return BindingOut(False, authorize_url(request))
    return BindingOut(True, authorize_url(request), wechat.masked(binding.openid), binding.bound_at)


async def show_binding(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    _channel_on(request)
    return reply(_out(request, await wechat.binding_of(request.app[DB], who.id)))


async def bind(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    _channel_on(request)
    form = await body(request, BindBody)
    openid = await _openid(request, form.code)
    try:
        binding = await wechat.bind(request.app[DB], who.id, openid, utcnow())
    except Conflict:
        raise ApiError(
            409, "conflict", "this WeChat account is bound to another relative"
        ) from None
    return reply(_out(request, binding))


async def sign_in(request: web.Request) -> web.Response:
    """Inside WeChat, ``/app`` signs a relative in through the platform's web authorization:
    the ``code`` it came back with stands for an OpenID (exchanged with the app secret, so
    the platform vouches for it), and the relative bound to that OpenID gets a session, as
    a password sign-in gives. An OpenID bound to nobody is 404 ``not_bound`` (the app then
    asks for the password, and binds once signed in)."""
    _channel_on(request)
    form = await body(request, BindBody)
    openid = await _openid(request, form.code)
    store = request.app[DB]
    binding = await wechat.binding_by_openid(store, openid)
    if binding is None:
        raise ApiError(404, "not_bound", "this WeChat account is bound to no relative")
    try:
        user = await accounts.user(store, binding.relative_id)
    except NotFound:
        raise ApiError(404, "not_bound", "this WeChat account is bound to no relative") from None
    if await accounts.disabled_ids(store, [user.id]):
        raise ApiError(403, "account_disabled", "this account is disabled")
    return await signed_in(request, user)


async def _openid(request: web.Request, code: str) -> str:
    try:
        return await request.app[PLATFORM].openid_for(code)
    except PlatformError as error:
        if error.transient:
            raise ApiError(503, "unavailable", "WeChat cannot be reached; try again") from None
        raise ApiError(400, "invalid_code", f"WeChat refused the code: {error}") from None


async def unbind(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    _channel_on(request)
    await wechat.unbind(request.app[DB], who.id, utcnow())
    return reply(_out(request, None))


# Web Push devices and the channel choice

Endpoint = Annotated[str, msgspec.Meta(min_length=8, max_length=2048)]
Key = Annotated[str, msgspec.Meta(min_length=8, max_length=256, pattern=r"^[A-Za-z0-9_\-=]+$")]


class PushKeys(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    p256dh: Key
    auth: Key


class SubscribeBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    endpoint: Endpoint
    keys: PushKeys
    expirationTime: float | None = None


class UnsubscribeBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    endpoint: Endpoint


class PushKeyOut(msgspec.Struct, frozen=True):
    key: str


class DeviceOut(msgspec.Struct, frozen=True):
    id: int
    endpoint: str


class RemovedOut(msgspec.Struct, frozen=True):
    removed: bool


class ChannelBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    channel: Channel


class NotificationsOut(msgspec.Struct, frozen=True):
    channel: Channel
    devices: list[DeviceOut]
    wechat_bound: bool
    wechat_available: bool


async def push_key(request: web.Request) -> web.Response:
    check_action(await principal(request), "notify")
    return reply(PushKeyOut(request.app[PUSH].public_key))


async def subscribe(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    form = await body(request, SubscribeBody)
    if not endpoint_allowed(request.app[SETTINGS], form.endpoint):
        raise ApiError(
            400,
            "endpoint_refused",
            "a push endpoint must be an https URL on a public host",
            field="endpoint",
        )
    try:
        device = await outbox.add_device(
            request.app[DB],
            who.id,
            form.endpoint,
            form.keys.p256dh,
            form.keys.auth,
            utcnow(),
        )
    except Conflict:
        raise ApiError(409, "conflict", "this endpoint belongs to another account") from None
    return reply(DeviceOut(device.id, device.endpoint), 201)


async def unsubscribe(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    form = await body(request, UnsubscribeBody)
    removed = await outbox.remove_device(request.app[DB], who.id, form.endpoint)
    return reply(RemovedOut(removed))


async def _notifications(request: web.Request, relative_id: int) -> NotificationsOut:
    db = request.app[DB]
    wechat_on = PLATFORM in request.app
    return NotificationsOut(
        channel=await outbox.channel_of(db, relative_id),
        devices=[DeviceOut(d.id, d.endpoint) for d in await outbox.devices(db, relative_id)],
        wechat_bound=wechat_on and await wechat.binding_of(db, relative_id) is not None,
        wechat_available=wechat_on,
    )


async def show_notifications(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    return reply(await _notifications(request, who.id))


async def choose_notifications(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "notify")
    form = await body(request, ChannelBody)
    await outbox.choose_channel(request.app[DB], who.id, form.channel, utcnow())
    return reply(await _notifications(request, who.id))


# delivery reports


class DeliveryOut(msgspec.Struct, frozen=True):
    message_id: int | None
    seq: int | None
    state: str
    channel: str | None
    attempts: int
    detail: str | None
    at: datetime | None


class DeliveriesOut(msgspec.Struct, frozen=True):
    items: list[DeliveryOut]


async def deliveries(request: web.Request) -> web.Response:
    who = check_action(await principal(request), "delivery.read")
    store = request.app[DB]
    try:
        conv = await conversations.conversation(store, path_id(request))
    except NotFound:
        raise Denied("not_found", "no such conversation") from None
    check_conversation(who, conv, "read")
    page = await messages.messages(
        store, conv.id, after=0, limit=500, include_notes=False, floor=history_floor(who, conv)
    )
    seqs = {m.id: m.seq for m in page if m.sender_role == "officer"}
    found = await outbox.deliveries(store, list(seqs))
    return reply(
        DeliveriesOut(
            [
                DeliveryOut(
                    d.message_id,
                    seqs.get(d.message_id or 0),
                    d.state,
                    d.channel,
                    d.attempts,
                    d.detail,
                    d.done_at,
                )
                for d in found
            ]
        )
    )


ROUTES: list[Route] = [
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
        "POST",
        "/wechat/signin",
        sign_in,
        "Sign in inside WeChat: a web authorization code (snsapi_base) whose OpenID is bound"
        " to a relative gives that relative a session (as /auth/login); 404 `not_bound`",
        "anyone (the platform vouches for the code)",
        body=BindBody,
        reply=LoggedIn,
        errors=(400, 403, 404, 503),
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
    Route(
        "GET",
        "/push/key",
        push_key,
        "The VAPID public key a device subscribes with",
        "relative",
        reply=PushKeyOut,
        errors=(401, 403),
    ),
    Route(
        "POST",
        "/push/subscriptions",
        subscribe,
        "Subscribe a device to Web Push (its PushSubscription JSON)",
        "relative (own)",
        body=SubscribeBody,
        reply=DeviceOut,
        status=201,
        errors=(400, 401, 403, 409),
    ),
    Route(
        "DELETE",
        "/push/subscriptions",
        unsubscribe,
        "Unsubscribe a device",
        "relative (own)",
        body=UnsubscribeBody,
        reply=RemovedOut,
        errors=(400, 401, 403),
    ),
    Route(
        "GET",
        "/notifications",
        show_notifications,
        "How the relative is told when it is not connected, and its devices",
        "relative (own)",
        reply=NotificationsOut,
        errors=(401, 403),
    ),
    Route(
        "PUT",
        "/notifications",
        choose_notifications,
        "Choose the channel: auto, wechat, push, sms or none (opted out)",
        "relative (own)",
        body=ChannelBody,
        reply=NotificationsOut,
        errors=(400, 401, 403),
    ),
    Route(
        "GET",
        "/conversations/{id}/deliveries",
        deliveries,
        "Per officer message: whether and how its notification reached the relative",
        "whoever may read the conversation",
        reply=DeliveriesOut,
        errors=(401, 404),
    ),
]
