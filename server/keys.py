"""The application's ``AppKey``s: what ``build_app`` (server/app.py) puts on the aiohttp
application and every handler reads. In a module of their own, so a handler depends on the
keys and not on the module that builds the app (which imports every handler)."""

from __future__ import annotations

from aiohttp import web

from channels.broker import Broker
from channels.hub import Hub
from server.codes import Codes
from server.config import Settings
from server.duty import DutyRoster
from server.gateway import Gateway
from server.keywords import LiveKeywords
from server.outbox import Relay
from server.push import Push
from server.routing import Router
from server.sending import SendPath
from server.sms import SmsSender
from server.wechat_platform import Platform
from storage.objects import ObjectStore
from storage.sql import Database

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
BROKER = web.AppKey("broker", Broker)
HUB = web.AppKey("hub", Hub)
GATEWAY = web.AppKey("gateway", Gateway)
SEND_PATH = web.AppKey("send_path", SendPath)
ROSTER = web.AppKey("roster", DutyRoster)
PLATFORM = web.AppKey("wechat_platform", Platform)  # only when the WeChat channel is on
PUSH = web.AppKey("push", Push)
RELAY = web.AppKey("relay", Relay)
CODES = web.AppKey("codes", Codes)  # SMS codes for registration and resets
SMS = web.AppKey("sms", SmsSender)  # texts: notices, and codes for registration and resets
OBJECTS = web.AppKey("objects", ObjectStore)  # where attachments' bytes are (issue 18)
KEYWORDS = web.AppKey("keywords", LiveKeywords)  # this process's keyword matcher
ROUTER = web.AppKey("router", Router)  # auto-assignment and the away reply (server/routing.py)
