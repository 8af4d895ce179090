"""Text messages behind one small interface: ``send(phone, text)``.

``HttpSms`` posts ``{"phone": ..., "text": ...}`` as JSON to ``KINLINE_SMS_URL`` (a gateway's
2xx is done; 429 and 5xx, or no answer, may succeed later); without it, ``LoggingSms`` only
logs that a text would have been sent (never its text: it may carry a code). Used for "you
have an answer" when the relative chose SMS, and by the accounts work for codes.
"""

from __future__ import annotations

import logging
from typing import Protocol

import aiohttp

log = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=10)


class SmsFailed(Exception):
    def __init__(self, detail: str, *, transient: bool) -> None:
        super().__init__(detail)
        self.transient = transient


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...
    async def close(self) -> None: ...


class LoggingSms:
    async def send(self, phone: str, text: str) -> None:
        log.info("SMS not sent (no KINLINE_SMS_URL)", extra={"phone_tail": phone[-4:]})

    async def close(self) -> None:
        return None


class HttpSms:
    def __init__(self, url: str) -> None:
        self._url = url
        self._http: aiohttp.ClientSession | None = None

    async def send(self, phone: str, text: str) -> None:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        try:
            async with self._http.post(self._url, json={"phone": phone, "text": text}) as answer:
                status = answer.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SmsFailed(f"SMS gateway unreachable: {exc!r}", transient=True) from None
        if not 200 <= status < 300:
            raise SmsFailed(
                f"SMS gateway answered {status}", transient=status == 429 or status >= 500
            )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


def make_sms(url: str) -> SmsSender:
    return HttpSms(url) if url else LoggingSms()
