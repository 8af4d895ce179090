"""What an uploaded file becomes before it is stored, sans I/O (CPU-bound: callers run it in a
thread).

- Its type is judged from its content with ``filetype`` (magic numbers), never from its name
  or the type the client announced. Allowed: JPEG, PNG, WebP and PDF; anything else (HTML
  named ``x.jpg``, SVG, a script) is ``unsupported_type`` (415).
- An image is decoded and written anew from its pixels alone with Pillow (as
  ``server/photos.py`` does for profile photos): turned upright, at most ``MAX_SIDE`` pixels
  a side, no EXIF (no GPS position, no camera serial), no ICC profile, comment or trailing
  bytes. JPEG and WebP become JPEG, PNG stays PNG (it may be a screenshot with sharp text or
  transparency). A thumbnail (JPEG, at most ``THUMB_SIDE`` a side) comes with it. An image that
  promises more than ``MAX_PIXELS`` is refused before it is decoded; one Pillow cannot read is
  ``unsupported_type`` too.
- A PDF is kept as it is (it cannot be re-encoded without a renderer) and is only ever
  served as a download (``server/api/attachments.py``).
- The display name is the uploaded file's base name without control characters, at most
  ``MAX_NAME`` characters, its extension made to match the stored type.
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
import warnings
from dataclasses import dataclass
from urllib.parse import unquote

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "application/pdf": "PDF",
}
MAX_SIDE = 2560
THUMB_SIDE = 320
MAX_PIXELS = 40_000_000
MAX_NAME = 120
QUALITY = 85
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}


class FileRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Prepared:
    content_type: str
    data: bytes
    name: str
    sha256: str
    thumbnail: bytes | None = None
    width: int | None = None
    height: int | None = None


def sniff(data: bytes) -> str:
    """The allowed type the content is, else ``FileRefused`` 415 ``unsupported_type``."""
    kind = filetype.guess(data[:8192])
    mime = kind.mime if kind is not None else None
    if mime not in ALLOWED or (mime == "application/pdf" and not data.startswith(b"%PDF-")):
        raise FileRefused(
            415, "unsupported_type", "send a photo (JPEG, PNG, WebP) or a PDF document"
        )
    return str(mime)


def display_name(given: str | None, content_type: str) -> str:
    """A safe name to show and to offer when downloading."""
    # some clients percent-encode the multipart file name (aiohttp's does), browsers do not
    base = unquote(given or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if unicodedata.category(c)[0] not in ("C", "Z") or c == " ")
    cleaned = cleaned.strip(" .") or "file"
    stem = cleaned.rsplit(".", 1)[0] if "." in cleaned else cleaned
    extension = _EXTENSIONS[content_type]
    return stem[: MAX_NAME - len(extension)] + extension


def _fresh(image: Image.Image, side: int) -> Image.Image:
    """A new image from the pixels alone (no metadata can ride along), fitted into ``side``."""
    upright = ImageOps.exif_transpose(image) or image
    upright.thumbnail((side, side))
    mode = "RGBA" if upright.mode in ("RGBA", "LA", "P", "PA") else "RGB"
    pixels = upright.convert(mode)
    return Image.frombytes(mode, pixels.size, pixels.tobytes())


def _jpeg(image: Image.Image) -> bytes:
    if image.mode == "RGBA":  # JPEG has no alpha: onto white, as a page would show it
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()


def _image(data: bytes, content_type: str, name: str | None) -> Prepared:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                if opened.format != ALLOWED[content_type]:
                    raise FileRefused(415, "unsupported_type", "the image is not what it seems")
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise FileRefused(413, "too_many_pixels", "the image has too many pixels")
                opened.load()
                full = _fresh(opened, MAX_SIDE)
                thumb = _fresh(full, THUMB_SIDE)
    except FileRefused:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        ValueError,
        SyntaxError,
    ):
        raise FileRefused(415, "unsupported_type", "the file is not a readable image") from None
    if content_type == "image/png":
        out = io.BytesIO()
        full.save(out, "PNG", optimize=True)
        stored, stored_type = out.getvalue(), "image/png"
    else:
        stored, stored_type = _jpeg(full), "image/jpeg"
    return Prepared(
        content_type=stored_type,
        data=stored,
        name=display_name(name, stored_type),
        sha256=hashlib.sha256(stored).hexdigest(),
        thumbnail=_jpeg(thumb),
        width=full.width,
        height=full.height,
    )


def prepare(data: bytes, name: str | None) -> Prepared:
    """The file to store for an upload; ``FileRefused`` with its status and stable code."""
    if not data:
        raise FileRefused(400, "empty_file", "the file is empty")
    content_type = sniff(data)
    if content_type == "application/pdf":
        return Prepared(
            content_type=content_type,
            data=data,
            name=display_name(name, content_type),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    return _image(data, content_type, name)
