"""The web pages' files (``web/``), served compressed and, under a fingerprint, cached for good.

At start every file under ``web/`` is read once, and the whole tree gets one fingerprint: the
first 12 hex digits of a SHA-256 over every path and content. The pages (``/app``,
``/console``...) are HTML that names its assets under ``/static/v/<fingerprint>/``, and every
module's ``/static/`` imports are rewritten the same way, so one page load fetches one
consistent version. Those responses say ``Cache-Control: public, max-age=31536000,
immutable``: a browser never asks again, and a new release (another fingerprint) is a new
address. The pages themselves and the plain ``/static/<path>`` addresses are ``no-cache``
(revalidated by ``ETag``). Text files are gzipped once, at start, and sent gzipped to any
client that accepts it (``Vary: Accept-Encoding``).

Only files found at start are served, by exact path (no ``..``, no symlink leaves
``web/``); an edit to ``web/`` shows after a restart.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

PREFIX = "/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
}
TEXT = {".js", ".css", ".html", ".svg", ".webmanifest", ".json"}
REWRITTEN = {".js", ".css", ".html"}  # what may name other assets by /static/ address


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None: not text, or not smaller
    content_type: str
    etag: str


class Assets:
    """Every file of one ``web/`` tree, as served: fingerprinted, rewritten, compressed."""

    def __init__(self, web_dir: Path) -> None:
        root = web_dir.resolve()
        raw: dict[str, bytes] = {}
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            raw[path.relative_to(root).as_posix()] = path.read_bytes()
        digest = hashlib.sha256()
        for name, content in raw.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
        self.fingerprint = digest.hexdigest()[:12]
        self.versioned = f"{PREFIX}v/{self.fingerprint}/"
        self._files = {name: self._asset(name, content) for name, content in raw.items()}

    def _asset(self, name: str, content: bytes) -> Asset:
        suffix = Path(name).suffix
        if suffix in REWRITTEN:
            content = self.rewrite(content)
        packed = gzip.compress(content, 9, mtime=0) if suffix in TEXT else None
        content_type = TYPES.get(suffix) or mimetypes.guess_type(name)[0]
        return Asset(
            content,
            packed if packed is not None and len(packed) < len(content) else None,
            content_type or "application/octet-stream",
            '"' + hashlib.sha256(content).hexdigest()[:16] + '"',
        )

    def rewrite(self, content: bytes) -> bytes:
        """``/static/x`` addresses (in quotes, as pages and modules write them) under the
        fingerprint."""
        for quote in (b'"', b"'", b"`", b"("):
            content = content.replace(quote + PREFIX.encode(), quote + self.versioned.encode())
        return content

    def get(self, name: str) -> Asset | None:
        return self._files.get(name)

    def respond(self, request: web.Request, asset: Asset, cache: str) -> web.Response:
        headers = {"Cache-Control": cache, "ETag": asset.etag, "Vary": "Accept-Encoding"}
        if request.headers.get("If-None-Match") == asset.etag:
            return web.Response(status=304, headers=headers)
        body = asset.body
        accepts = request.headers.get("Accept-Encoding", "")
        if asset.gzipped is not None and "gzip" in accepts:
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        response = web.Response(body=body, headers=headers)
        response.content_type = asset.content_type
        if asset.content_type.startswith("text/") or asset.content_type.endswith("+json"):
            response.charset = "utf-8"
        return response


def file_handler(assets: Assets, name: str, cache: str = "no-cache") -> Handler:
    """A handler for one file of the tree at an address of its own (a page, the worker)."""
    asset = assets.get(name)
    if asset is None:
        raise FileNotFoundError(name)

    async def serve(request: web.Request) -> web.StreamResponse:
        return assets.respond(request, asset, cache)

    return serve


def add_routes(app: web.Application, assets: Assets) -> None:
    """``/static/v/<fingerprint>/<path>`` (immutable) and ``/static/<path>`` (revalidated)."""

    async def versioned(request: web.Request) -> web.StreamResponse:
        asset = assets.get(request.match_info["path"])
        if asset is None:
            raise web.HTTPNotFound()
        # an older fingerprint (a page loaded before a release) gets today's file, briefly cached
        current = request.match_info["fingerprint"] == assets.fingerprint
        return assets.respond(request, asset, IMMUTABLE if current else "no-cache")

    async def plain(request: web.Request) -> web.StreamResponse:
        asset = assets.get(request.match_info["path"])
        if asset is None:
            raise web.HTTPNotFound()
        return assets.respond(request, asset, "no-cache")

    app.router.add_get(PREFIX + "v/{fingerprint:[0-9a-f]{12}}/{path:.+}", versioned)
    app.router.add_get(PREFIX + "{path:.+}", plain)
