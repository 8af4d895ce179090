"""SMS codes for registration and password resets, with answers that say nothing.

``POST /auth/register/code`` and ``POST /auth/reset/code`` answer 202 whatever the phone:
whether it has an account here (that is, whether someone is related to a prisoner) must not
be learnt from them. What differs is only the text the phone itself receives: a code to
register for an unknown phone, "you already have an account" for a known one; a reset code
for a known phone, nothing for an unknown one. A code is then redeemed once; a wrong,
expired, spent or never-sent code gets one answer, ``invalid_code``.

Both are throttled: ``PER_PHONE`` texts per phone per hour (counted in the database, so
across processes) and ``PER_CLIENT`` requests per client per hour (this process).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta

from server.config import Settings
from server.sms import SmsFailed, SmsSender
from server.throttle import FailureWindow
from storage import accounts, phone_codes
from storage.errors import NotFound
from storage.phone_codes import Purpose
from storage.sql import Database, Sql

log = logging.getLogger(__name__)

PER_PHONE = 5  # texts per phone per hour
PER_CLIENT = 20  # code requests per client per hour
HOUR = 3600.0


class TooMany(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many codes asked for; try again later")
        self.retry_after = retry_after


def code_hash(secret: str, phone: str, purpose: Purpose, code: str) -> bytes:
    message = f"{purpose}|{phone}|{code.strip()}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


class Codes:
    """Sends and redeems the codes of one process (its client throttle is its own)."""

    def __init__(self, db: Database, sms: SmsSender, settings: Settings) -> None:
        self.db = db
        self.sms = sms
        self.settings = settings
        self.clients = FailureWindow(PER_CLIENT, HOUR)
        self.attempts = FailureWindow(PER_CLIENT, HOUR)  # registrations and resets tried

    def attempt(self, client: str) -> None:
        """Count a registration or reset try by ``client``; ``TooMany`` past the limit."""
        wait = self.attempts.retry_after(client)
        if wait:
            raise TooMany(int(wait) + 1)
        self.attempts.failed(client)

    async def send(self, phone: str, purpose: Purpose, client: str, now: datetime) -> None:
        """Text ``phone`` what fits (see the module docstring); ``TooMany`` past a limit."""
        wait = self.clients.retry_after(client)
        if wait:
            raise TooMany(int(wait) + 1)
        self.clients.failed(client)  # every request counts, answered or not
        if await phone_codes.sent_since(self.db, phone, now - timedelta(hours=1)) >= PER_PHONE:
            raise TooMany(int(HOUR))
        try:
            await accounts.credentials(self.db, phone)
            known = True
        except NotFound:
            known = await accounts.disabled_password_hash(self.db, phone) is not None
        # A row is stored every time (the per-phone limit counts them all); its code is
        # texted only when it can be used: registering a new phone, resetting a known one.
        code = f"{secrets.randbelow(1_000_000):06d}"
        expires = now + timedelta(minutes=self.settings.code_minutes)
        digest = code_hash(self.settings.secret, phone, purpose, code)
        await phone_codes.issue(self.db, phone, purpose, digest, now, expires)
        minutes = self.settings.code_minutes
        if (purpose == "register") != known:
            await self._text(phone, f"Kinline code {code} (valid {minutes} min); never share it")
        elif purpose == "register":  # the code above is never sent: it cannot be used
            await self._text(phone, "Kinline: this phone already has an account; sign in or reset")

    async def _text(self, phone: str, text: str) -> None:
        try:
            await self.sms.send(phone, text)
        except SmsFailed as exc:  # the answer stays 202: it must not differ by phone
            log.warning("SMS not sent: %s", exc)

    async def redeem(
        self, sql: Sql, *, phone: str, purpose: Purpose, code: str, now: datetime
    ) -> bool:
        """Spend the code inside the caller's transaction; whether it was the right one.
        The caller commits either way (a wrong try must count) and refuses after."""
        digest = code_hash(self.settings.secret, phone, purpose, code)
        return await phone_codes.redeem(self.db, sql, phone, purpose, digest, now)
