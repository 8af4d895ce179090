"""The WeChat Official Account server at ``/wechat`` (DESIGN.md section 8).

What the platform sends and what it gets:

- ``GET /wechat?signature&timestamp&nonce&echostr`` (URL verification): ``echostr`` when
  ``signature`` is ``sha1`` of the sorted token, timestamp and nonce; 403 otherwise.
- ``POST /wechat``: every request's ``signature`` is checked, and its ``timestamp`` must be
  within ``MAX_SKEW`` seconds of now (a replayed request is refused). In safe mode
  (``KINLINE_WECHAT_AES_KEY`` set) the body must be encrypted (``encrypt_type=aes``): its
  ``msg_signature`` is checked and it is decrypted with the EncodingAESKey, and the passive
  reply is encrypted the same way. The crypto, the signature and the XML are wechatpy's
  (``WeChatCrypto``, ``check_signature``, ``parse_message``). Anything refused stores nothing
  and is answered 4xx (403 for a bad signature or a stale timestamp, 400 for a body that is
  not a message).
- ``subscribe`` / ``unsubscribe`` keep the account's followers (``storage.wechat``); a
  follower that is not bound is told how to bind (the passive reply).
- A bound relative's text enters its conversation through the same send path as a socket's
  ``send`` (``SendPath.post``: group commit, seq under the conversation's lock). Its ``MsgId``
  is the cid, so the platform's retries of a POST it got no answer to store nothing new. The
  platform waits 5 s: the reply (``success``) is written only once the message committed;
  a commit not done within ``REPLY_WITHIN`` seconds is left to finish and the request is
  answered 503 with no reply, so the platform retries, and the retry, finding the message
  stored, answers ``success``. Storage down is 503 too (nothing stored; the retry may do).
- A relative verified for several inmates chooses with a number (the reply lists them as
  "1. name"; "0" lists them again); an unverified relative, a voice or video message, an
  over-long text or text no database can store each get a reply in Chinese and store nothing.
- An image (``MediaId``, ``PicUrl``) is fetched from the platform's temporary media and
  stored as an attachment exactly as an upload is, then sent like a text (``_image``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from wechatpy import create_reply, parse_message  # type: ignore[import-untyped]
from wechatpy.crypto import WeChatCrypto  # type: ignore[import-untyped]
from wechatpy.exceptions import (  # type: ignore[import-untyped]
    InvalidAppIdException,
    InvalidSignatureException,
)
from wechatpy.utils import check_signature  # type: ignore[import-untyped]

from channels.text import storable
from domain.records import Attachment, NewMessage, User
from server import attaching, faults, sessions
from server.api.attachments import store_upload
from server.api.base import ApiError
from server.keys import DB, PLATFORM, SEND_PATH, SETTINGS
from server.policy import Denied, Principal, check_conversation
from server.wechat_platform import PlatformError
from storage import accounts, attachments, conversations, prisons, wechat
from storage.errors import NotFound
from storage.sql import utcnow

log = logging.getLogger(__name__)

MAX_SKEW = 300  # seconds between the request's timestamp and now, either way
REPLY_WITHIN = 4.0  # seconds: the platform gives up (and retries) after 5

BIND_HINT = (
    "欢迎关注！要在这里与监狱沟通，请先绑定您的亲属账号：点击菜单“在线咨询”，"
    "登录后按“绑定微信”即可。绑定后直接发送文字消息，民警的回复会在这里收到。"
)
NOT_VERIFIED = "您的亲属关系尚未核实，核实通过后即可在这里留言。请在应用中查看申请进度。"
ONLY_TEXT = "目前只支持文字和图片消息，暂不支持语音或视频。请用文字描述您的问题。"
IMAGE_FAILED = "图片未能接收（仅支持 JPEG、PNG、WebP，且不超过大小限制），请重新发送或用文字描述。"
TOO_LONG = "消息太长（最多 {limit} 字），请分几条发送。"
BAD_TEXT = "消息中含有无法保存的字符，请修改后重新发送。"
TOO_FAST = "发送太快了，请稍后再发。"
CHOOSE = (
    "您绑定了多位服刑人员。请回复序号选择这条消息是关于谁的：\n{menu}\n之后可随时回复 0 重新选择。"
)
CHOSEN = "好的，接下来您的消息将发给关于“{name}”的对话。请发送您的问题。"
WELCOME_BACK = "欢迎回来！直接发送文字消息即可咨询，民警的回复会在这里收到。"


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _refuse(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _fresh(timestamp: str) -> bool:
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    return abs(time.time() - stamp) <= MAX_SKEW


async def verify(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    q = request.query
    try:
        check_signature(
            settings.wechat_token,
            q.get("signature", ""),
            q.get("timestamp", ""),
            q.get("nonce", ""),
        )
    except InvalidSignatureException:
        return _refuse(403, "bad_signature", "the signature does not match")
    return web.Response(text=q.get("echostr", ""), content_type="text/plain")


def _crypto(settings: Any) -> WeChatCrypto:
    return WeChatCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_appid)


async def receive(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    q = request.query
    timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
    try:
        check_signature(settings.wechat_token, q.get("signature", ""), timestamp, nonce)
    except InvalidSignatureException:
        return _refuse(403, "bad_signature", "the signature does not match")
    if not _fresh(timestamp):
        return _refuse(403, "stale_request", f"the timestamp is more than {MAX_SKEW} s away")
    raw = await request.read()
    safe = q.get("encrypt_type") == "aes"
    if settings.wechat_aes_key and not safe:
        return _refuse(400, "encryption_required", "this account is in safe mode")
    if safe and not settings.wechat_aes_key:
        return _refuse(400, "invalid_request", "safe mode is not configured")
    try:
        if safe:
            xml = _crypto(settings).decrypt_message(
                raw, q.get("msg_signature", ""), timestamp, nonce
            )
        else:
            xml = raw.decode("utf-8")
        message = parse_message(xml)
    except InvalidSignatureException:
        return _refuse(403, "bad_signature", "the message signature does not match")
    except InvalidAppIdException:
        return _refuse(403, "bad_signature", "the message is for another account")
    except Exception:
        return _refuse(400, "invalid_request", "the body is not a WeChat message")
    if not isinstance(getattr(message, "source", None), str) or not message.source:
        return _refuse(400, "invalid_request", "the message names no sender")
    try:
        text = await _handle(request, message)
    except Refused as refused:
        return _refuse(refused.status, refused.code, str(refused))
    if text is None:
        return web.Response(text="success", content_type="text/plain")
    reply = create_reply(text, message).render()
    if safe:
        reply = _crypto(settings).encrypt_message(reply, nonce, timestamp)
    return web.Response(text=reply, content_type="application/xml")


async def _handle(request: web.Request, message: Any) -> str | None:
    """The passive reply's text for ``message`` (None: ``success``, no reply)."""
    store = request.app[DB]
    openid: str = message.source
    kind = message.type
    try:
        if kind == "event":
            event = getattr(message, "event", "")
            if event in ("subscribe", "subscribe_scan"):
                await wechat.follow(store, openid, True, utcnow())
                bound = await wechat.binding_by_openid(store, openid)
                return WELCOME_BACK if bound is not None else BIND_HINT
            if event == "unsubscribe":
                await wechat.follow(store, openid, False, utcnow())
            return None
        binding = await wechat.binding_by_openid(store, openid)
        if binding is None:
            return BIND_HINT
        if kind == "image" and PLATFORM in request.app:
            return await _image(request, binding, message)
        if kind != "text":
            return ONLY_TEXT
        return await _text(request, binding, message)
    except Exception as exc:
        if not faults.unavailable(exc):
            raise
        faults.STORAGE.failed(exc)
        raise Refused(503, "unavailable", "storage is unavailable; not stored") from None


async def _target(
    request: web.Request, binding: wechat.Binding, choice: str | None
) -> tuple[User, Principal, int] | str:
    """The relative and the inmate its message is about, or the reply to give instead (not
    verified, or several inmates: the menu, and ``choice``, a text's body, may pick one)."""
    store = request.app[DB]
    try:
        user = await accounts.user(store, binding.relative_id)
    except NotFound:
        return BIND_HINT
    if await accounts.disabled_ids(store, [user.id]):
        return BIND_HINT  # a disabled account writes nothing, from WeChat neither
    who = await sessions.principal_for(store, user)
    inmates = sorted(who.verified_inmates)
    if not inmates:
        return NOT_VERIFIED
    if len(inmates) == 1:
        return user, who, inmates[0]
    names = [(await prisons.inmate(store, i)).name for i in inmates]
    menu = "\n".join(f"{n}. {name}" for n, name in enumerate(names, 1))
    picked = (choice or "").strip()
    if choice is not None and picked.isascii() and picked.isdigit():
        number = int(picked)
        if 1 <= number <= len(inmates):
            await wechat.choose(store, user.id, inmates[number - 1])
            return CHOSEN.format(name=names[number - 1])
        await wechat.choose(store, user.id, None)
        return CHOOSE.format(menu=menu)
    if binding.inmate_id not in inmates:
        return CHOOSE.format(menu=menu)
    assert binding.inmate_id is not None
    return user, who, binding.inmate_id


def _msg_id(message: Any) -> str | None:
    msg_id = str(getattr(message, "id", "") or "")
    return msg_id if msg_id and storable(msg_id) and len(msg_id) <= 64 else None


async def _text(request: web.Request, binding: wechat.Binding, message: Any) -> str | None:
    settings = request.app[SETTINGS]
    body: str = message.content or ""
    target = await _target(request, binding, body)
    if isinstance(target, str):
        return target
    if not body.strip():
        return None
    if len(body) > settings.max_body_chars:
        return TOO_LONG.format(limit=settings.max_body_chars)
    msg_id = _msg_id(message)
    if not storable(body) or msg_id is None:
        return BAD_TEXT
    return await _post(request, target, msg_id, body)


async def _image(request: web.Request, binding: wechat.Binding, message: Any) -> str | None:
    """An image message (``MediaId``, ``PicUrl``): the file is fetched from the platform's
    temporary media (``/cgi-bin/media/get``), judged and re-encoded like any upload
    (``server.api.attachments.store_upload``) and sent with an empty body through the same
    send path, its ``MsgId`` the cid. A retry of a stored image fetches nothing again."""
    store, settings = request.app[DB], request.app[SETTINGS]
    target = await _target(request, binding, None)
    if isinstance(target, str):
        return target
    user, who, inmate_id = target
    msg_id = _msg_id(message)
    media_id = str(getattr(message, "media_id", "") or "")
    if msg_id is None or not media_id:
        return IMAGE_FAILED
    conv = await conversations.open_conversation(store, user.id, inmate_id)
    if await attachments.stored_message_id(store, conv.id, user.id, msg_id) is not None:
        return None  # the platform's retry of an image already stored
    try:
        data = await request.app[PLATFORM].media(media_id, settings.max_attachment_bytes)
    except PlatformError as error:
        if error.transient:
            raise Refused(503, "unavailable", "the image could not be fetched yet") from None
        return IMAGE_FAILED
    try:
        found = await store_upload(request.app, user.id, data, f"wechat-{msg_id}.jpg")
        attached = await attaching.bind(
            store,
            owner_id=user.id,
            conversation_id=conv.id,
            cid=msg_id,
            ids=[found.id],
            limit=settings.max_attachments,
        )
    except (ApiError, attaching.AttachRefused):
        return IMAGE_FAILED
    return await _post(request, (user, who, inmate_id), msg_id, "", attached)


async def _post(
    request: web.Request,
    target: tuple[User, Principal, int],
    msg_id: str,
    body: str,
    attached: tuple[Attachment, ...] = (),
) -> str | None:
    """Through the send path, answered once committed (see the module docstring)."""
    store, path = request.app[DB], request.app[SEND_PATH]
    user, who, inmate_id = target
    conv = await conversations.open_conversation(store, user.id, inmate_id)
    try:
        check_conversation(who, conv, "send")
    except Denied:
        return NOT_VERIFIED
    if path.admit(user.id) is not None:
        return TOO_FAST
    item = NewMessage(conv.id, user.id, "relative", msg_id, body, "text", user.name, attached)
    posted = asyncio.ensure_future(path.post(item, conversation=conv))
    try:
        async with asyncio.timeout(REPLY_WITHIN):
            await asyncio.shield(posted)
    except TimeoutError:
        posted.add_done_callback(_settled_late)
        log.warning("a WeChat message did not commit in time; the platform will retry")
        raise Refused(503, "unavailable", "not committed yet; send it again") from None
    except NotFound:
        return None
    await wechat.heard_from(store, user.id, utcnow())
    return None


def _settled_late(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("a late WeChat message failed: %r", done.exception())


def add_routes(app: web.Application) -> None:
    """``/wechat``, only when the channel is configured (otherwise it does not exist: 404)."""
    if not app[SETTINGS].wechat_enabled:
        return
    app.router.add_get("/wechat", verify)
    app.router.add_post("/wechat", receive)
