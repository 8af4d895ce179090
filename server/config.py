"""One settings object, built from ``KINLINE_*`` environment variables and CLI flags.

Flags win over the environment, the environment over the defaults. A bad value raises
``ConfigError`` with one line naming the setting; the CLI prints it and exits non-zero.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from channels.redis_target import CLUSTER_SCHEMES, cluster_target
from domain.records import CONSENT_CATEGORIES
from storage import SCHEMES

REDIS_SCHEMES = ("redis", "rediss", "unix", *CLUSTER_SCHEMES)


class ConfigError(ValueError):
    """A setting has a value Kinline cannot use."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/kinline.db"
    redis_url: str | None = None  # None: the in-process broker (one process only)
    redis_prefix: str = "kinline:"  # channel prefix: deployments sharing a Redis stay apart
    secret: str = ""  # keys the national-id hashes; generated into ./var when unset
    allowed_origins: tuple[str, ...] = ()  # empty: the server's own http://host:port
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    listen_backlog: int = 4096  # connections the kernel queues before accept (capped by somaxconn)
    max_frame_bytes: int = 16384
    max_body_chars: int = 2000
    send_rate: float = 5.0  # sustained messages per second per user
    send_burst: int = 20
    max_sockets_per_user: int = 8
    max_outbound_bytes: int = 512 * 1024  # unsent bytes for one socket before it is closed 4008
    socket_send_buffer: int = 128 * 1024  # kernel send buffer per socket (SO_SNDBUF), bytes
    max_hello_cursors: int = 200  # cursors one hello may name; past it: too_many_cursors
    subscribe_rate: float = 20.0  # hello/watch/unwatch frames per second per socket, sustained
    subscribe_burst: int = 1000  # a console re-watching its whole queue after a reconnect
    look_window: float = 300.0  # seconds one audited supervisor look at a conversation covers
    keyword_check: float = 30.0  # seconds between two looks at the stored keyword-list version
    heartbeat: float = 20.0
    presence_ttl: float = 30.0  # an on-duty officer whose process died stops counting after this
    hold_grace: float = 120.0  # seconds a holder may be disconnected before its threads go back
    assign_interval: float = 2.0  # seconds between two sweeps for questions to auto-assign
    rebalance_interval: float = 2.0  # seconds between two looks at every process's socket count
    rebalance_tolerance: float = 0.1  # a process sheds above share * (1 + this) + slack sockets
    rebalance_slack: int = 16
    rebalance_max_shed: int = 100  # sockets closed with 1012 per look at most; 0 turns it off
    max_request_bytes: int = 64 * 1024
    # the few routes that take a file (a prison's CSV export, a supervisor's photo)
    max_upload_bytes: int = 4 * 1024 * 1024
    body_timeout: float = 10.0  # seconds to receive a request body before answering 408
    session_days: int = 30
    log_format: str = "auto"  # auto (json unless a terminal) | json | text
    log_level: str = "INFO"
    timezone: str = "Asia/Shanghai"  # the bureau's local day: visit hours, per-day figures
    complaint_days: int = 15  # a complaint's answer is due this many days after it is filed
    web_dir: str = field(default_factory=lambda: str(Path(__file__).parent.parent / "web"))
    # Reaching relatives outside the page (DESIGN.md section 8). The WeChat channel is on
    # when the app id, secret and token are all set; otherwise /wechat answers 404.
    wechat_appid: str = ""
    wechat_secret: str = ""
    wechat_token: str = ""
    wechat_aes_key: str = ""  # the EncodingAESKey (43 characters): safe mode
    wechat_template_id: str = ""  # the "your question was answered" template
    wechat_api: str = "https://api.weixin.qq.com"
    wechat_oauth: str = "https://open.weixin.qq.com/connect/oauth2/authorize"
    public_url: str = ""  # links in notifications; empty: http://host:port
    vapid_subject: str = "mailto:admin@kinline.invalid"
    vapid_key: str = ""  # PEM of the VAPID private key; generated into ./var when unset
    push_endpoints: tuple[str, ...] = ()  # push endpoint prefixes allowed besides public https
    sms_url: str = ""  # empty: SMS are only logged
    outbox_poll: float = 1.0  # seconds between two looks at the outbox for due items
    outbox_max_attempts: int = 8  # a notification still failing after this many is failed
    outbox_backoff: float = 2.0  # seconds before the first retry; doubled per attempt
    notify_coalesce: float = 600.0  # seconds: one unread conversation notifies once per this
    # Identity and the edge (issue 14)
    trusted_proxies: tuple[str, ...] = ()  # networks whose X-Forwarded-For/-Proto are believed
    metrics_token: str = ""  # /metrics needs "Bearer <token>"; empty: loopback clients only
    metrics_listen: str = ""  # host:port serving /metrics alone (server/scrape.py)
    verify_phone: bool = True  # registration needs the SMS code sent to the phone
    code_minutes: int = 10  # an SMS code's lifetime
    retention_years: int = 0  # message text older than this is purged daily; 0: kept forever
    retention_archive: str = ""  # a directory: messages are archived there before the purge
    # What an inmate with no recorded decision shares with a verified relative: every
    # category, as before consent scopes existed (a family verified by the prison keeps what it
    # read; the inmate narrows it when it wants, recorded by an officer).
    consent_default: tuple[str, ...] = CONSENT_CATEGORIES
    # Attachments (issue 18): where the files are, and the limits on them
    files: str = "var/files"  # a directory, or s3://bucket[/prefix]
    s3_endpoint: str = ""  # an S3-compatible store other than AWS
    s3_region: str = "us-east-1"
    max_attachment_bytes: int = 10 * 1024 * 1024  # one uploaded file
    max_attachments: int = 4  # files one message carries
    max_evidence: int = 3  # files one link request carries
    attachment_quota_bytes: int = 200 * 1024 * 1024  # every file one user has stored
    unsent_attachment_hours: float = 24.0  # an upload sent with nothing is removed after this
    attachment_sweep_interval: float = 600.0  # seconds between two sweeps

    @property
    def wechat_enabled(self) -> bool:
        return bool(self.wechat_appid and self.wechat_secret and self.wechat_token)

    @property
    def public_base(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def origins(self) -> frozenset[str]:
        if self.allowed_origins:
            return frozenset(self.allowed_origins)
        port = "" if self.port == 80 else f":{self.port}"
        hosts = (
            {self.host, "localhost", "127.0.0.1"}
            if self.host in ("127.0.0.1", "localhost", "0.0.0.0")  # noqa: S104
            else {self.host}
        )
        return frozenset(f"http://{h}{port}" for h in hosts)


def _int(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise ValueError(f"must be at least {low}")
        if high is not None and value > high:
            raise ValueError(f"must be at most {high}")
        return value

    return parse


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be positive")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError("must be 0 or more")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 10:
        raise ValueError("must be between 0 and 10")
    return value


def _database_url(text: str) -> str:
    scheme = urlsplit(text).scheme
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}, expected one of {', '.join(SCHEMES)}")
    return text


def _redis_url(text: str) -> str | None:
    if not text:
        return None
    scheme = urlsplit(text).scheme
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}, expected one of {', '.join(REDIS_SCHEMES)}")
    cluster_target(text)  # a cluster URL must name host:port seed nodes
    return text


def _origins(text: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(f"{origin!r} is not an origin like https://example.org")
    return origins


def _timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known IANA time zone such as Asia/Shanghai") from None
    return text


def _aes_key(text: str) -> str:
    import base64
    import binascii

    if not text:
        return text
    try:
        key = base64.b64decode(text + "=", validate=True)
    except binascii.Error:
        raise ValueError("not an EncodingAESKey (43 characters of base64)") from None
    if len(text) != 43 or len(key) != 32:
        raise ValueError("not an EncodingAESKey (43 characters of base64)")
    return text


def _url(text: str) -> str:
    if not text:
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{text!r} is not an http(s) URL")
    return text.rstrip("/")


def _prefixes(text: str) -> tuple[str, ...]:
    prefixes = tuple(p.strip() for p in text.split(",") if p.strip())
    for prefix in prefixes:
        _url(prefix)
    return prefixes


def _networks(text: str) -> tuple[str, ...]:
    import ipaddress

    networks = tuple(n.strip() for n in text.split(",") if n.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ValueError(f"{network!r} is not an address or network like 10.0.0.0/8") from None
    return networks


def _listen(text: str) -> str:
    """``host:port`` (``[::1]:9100`` for IPv6), or empty."""
    if not text:
        return text
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected host:port, such as 10.0.0.5:9100")
    return text


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1 or 0")


def _categories(text: str) -> tuple[str, ...]:
    """``all``, ``none`` or a comma-separated list of card categories."""
    text = text.strip().lower()
    if text == "all":
        return CONSENT_CATEGORIES
    if text == "none":
        return ()
    given = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in given if p not in CONSENT_CATEGORIES]
    if unknown or not given:
        raise ValueError(f"expected all, none or some of {', '.join(CONSENT_CATEGORIES)}")
    return tuple(c for c in CONSENT_CATEGORIES if c in given)


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text

    return parse


# setting -> (environment variable, parser); documented in the README's table
PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "database_url": ("KINLINE_DATABASE_URL", _database_url),
    "redis_url": ("KINLINE_REDIS_URL", _redis_url),
    "redis_prefix": ("KINLINE_REDIS_PREFIX", str),
    "secret": ("KINLINE_SECRET", str),
    "allowed_origins": ("KINLINE_ALLOWED_ORIGINS", _origins),
    "host": ("KINLINE_HOST", str),
    "port": ("KINLINE_PORT", _int(0, 65535)),
    "workers": ("KINLINE_WORKERS", _int(1)),
    "listen_backlog": ("KINLINE_LISTEN_BACKLOG", _int(1, 65535)),
    "max_frame_bytes": ("KINLINE_MAX_FRAME_BYTES", _int(256)),
    "max_body_chars": ("KINLINE_MAX_BODY_CHARS", _int(1)),
    "send_rate": ("KINLINE_SEND_RATE", _positive_float),
    "send_burst": ("KINLINE_SEND_BURST", _int(1)),
    "max_sockets_per_user": ("KINLINE_MAX_SOCKETS_PER_USER", _int(1)),
    "max_outbound_bytes": ("KINLINE_MAX_OUTBOUND_BYTES", _int(4096)),
    "socket_send_buffer": ("KINLINE_SOCKET_SEND_BUFFER", _int(4096)),
    "max_hello_cursors": ("KINLINE_MAX_HELLO_CURSORS", _int(1, 1000)),
    "subscribe_rate": ("KINLINE_SUBSCRIBE_RATE", _positive_float),
    "subscribe_burst": ("KINLINE_SUBSCRIBE_BURST", _int(1)),
    "look_window": ("KINLINE_LOOK_WINDOW", _positive_float),
    "keyword_check": ("KINLINE_KEYWORD_CHECK", _positive_float),
    "heartbeat": ("KINLINE_HEARTBEAT", _positive_float),
    "presence_ttl": ("KINLINE_PRESENCE_TTL", _positive_float),
    "hold_grace": ("KINLINE_HOLD_GRACE", _non_negative_float),
    "assign_interval": ("KINLINE_ASSIGN_INTERVAL", _positive_float),
    "rebalance_interval": ("KINLINE_REBALANCE_INTERVAL", _positive_float),
    "rebalance_tolerance": ("KINLINE_REBALANCE_TOLERANCE", _fraction),
    "rebalance_slack": ("KINLINE_REBALANCE_SLACK", _int(0)),
    "rebalance_max_shed": ("KINLINE_REBALANCE_MAX_SHED", _int(0)),
    "max_request_bytes": ("KINLINE_MAX_REQUEST_BYTES", _int(1024)),
    "max_upload_bytes": ("KINLINE_MAX_UPLOAD_BYTES", _int(1024)),
    "body_timeout": ("KINLINE_BODY_TIMEOUT", _positive_float),
    "session_days": ("KINLINE_SESSION_DAYS", _int(1)),
    "timezone": ("KINLINE_TIMEZONE", _timezone),
    "complaint_days": ("KINLINE_COMPLAINT_DAYS", _int(1, 365)),
    "wechat_appid": ("KINLINE_WECHAT_APPID", str),
    "wechat_secret": ("KINLINE_WECHAT_SECRET", str),
    "wechat_token": ("KINLINE_WECHAT_TOKEN", str),
    "wechat_aes_key": ("KINLINE_WECHAT_AES_KEY", _aes_key),
    "wechat_template_id": ("KINLINE_WECHAT_TEMPLATE_ID", str),
    "wechat_api": ("KINLINE_WECHAT_API", _url),
    "wechat_oauth": ("KINLINE_WECHAT_OAUTH", _url),
    "public_url": ("KINLINE_PUBLIC_URL", _url),
    "vapid_subject": ("KINLINE_VAPID_SUBJECT", str),
    "vapid_key": ("KINLINE_VAPID_KEY", str),
    "push_endpoints": ("KINLINE_PUSH_ENDPOINTS", _prefixes),
    "sms_url": ("KINLINE_SMS_URL", _url),
    "outbox_poll": ("KINLINE_OUTBOX_POLL", _positive_float),
    "outbox_max_attempts": ("KINLINE_OUTBOX_MAX_ATTEMPTS", _int(1, 100)),
    "outbox_backoff": ("KINLINE_OUTBOX_BACKOFF", _positive_float),
    "notify_coalesce": ("KINLINE_NOTIFY_COALESCE", _positive_float),
    "trusted_proxies": ("KINLINE_TRUSTED_PROXIES", _networks),
    "metrics_token": ("KINLINE_METRICS_TOKEN", str),
    "metrics_listen": ("KINLINE_METRICS_LISTEN", _listen),
    "verify_phone": ("KINLINE_VERIFY_PHONE", _flag),
    "code_minutes": ("KINLINE_CODE_MINUTES", _int(1, 60)),
    "retention_years": ("KINLINE_RETENTION_YEARS", _int(0, 100)),
    "retention_archive": ("KINLINE_RETENTION_ARCHIVE", str),
    "consent_default": ("KINLINE_CONSENT_DEFAULT", _categories),
    "files": ("KINLINE_FILES", str),
    "s3_endpoint": ("KINLINE_S3_ENDPOINT", _url),
    "s3_region": ("KINLINE_S3_REGION", str),
    "max_attachment_bytes": ("KINLINE_MAX_ATTACHMENT_BYTES", _int(1024)),
    "max_attachments": ("KINLINE_MAX_ATTACHMENTS", _int(1, 20)),
    "max_evidence": ("KINLINE_MAX_EVIDENCE", _int(0, 10)),
    "attachment_quota_bytes": ("KINLINE_ATTACHMENT_QUOTA_BYTES", _int(1024)),
    "unsent_attachment_hours": ("KINLINE_UNSENT_ATTACHMENT_HOURS", _positive_float),
    "attachment_sweep_interval": ("KINLINE_ATTACHMENT_SWEEP_INTERVAL", _positive_float),
    "log_format": ("KINLINE_LOG_FORMAT", _choice("auto", "json", "text")),
    "log_level": ("KINLINE_LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR")),
}


def load(env: Mapping[str, str] | None = None, **flags: str | int | None) -> Settings:
    """Settings from ``env`` (default ``os.environ``) overridden by the non-None ``flags``."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, (variable, parse) in PARSERS.items():
        flag = flags.get(name)
        raw, source = (
            (str(flag), f"--{name.replace('_', '-')}")
            if flag is not None
            else (env.get(variable), variable)
        )
        if raw is None:
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}={raw!r} is not valid: {exc}") from None
    unknown = set(flags) - set(PARSERS)
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**values)


def with_secret(settings: Settings, var_dir: Path = Path("var")) -> Settings:
    """Fill in a missing secret from ``var/secret`` (created once) so a demo needs no setup.
    Production sets ``KINLINE_SECRET``; every process of a deployment must share it."""
    if settings.secret:
        return settings
    path = var_dir / "secret"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return dataclasses.replace(settings, secret=path.read_text().strip())


def with_vapid(settings: Settings, var_dir: Path = Path("var")) -> Settings:
    """Fill in a missing VAPID key from ``var/vapid.pem`` (generated once), like the secret:
    every process of a deployment must share it (``KINLINE_VAPID_KEY`` in production), or the
    devices subscribed through one process could not be pushed to by another."""
    if settings.vapid_key:
        return settings
    path = var_dir / "vapid.pem"
    if not path.exists():
        from server.push import generate_key

        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_key())
        path.chmod(0o600)
    return dataclasses.replace(settings, vapid_key=path.read_text())
