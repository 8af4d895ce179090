"""A supervisor's photo, made safe to publish: decoded, turned upright, shrunk, and written
anew as a JPEG from its pixels alone, so nothing of the uploaded file survives but the
picture (no EXIF: no GPS position, camera serial or capture time; no ICC profile, comments or
trailing bytes, no polyglot payload). Only JPEG, PNG and WebP are read; an image whose
dimensions promise more than ``MAX_PIXELS`` is refused before it is decoded (a decompression
bomb). CPU-bound: callers run it in a thread.

Codes: ``photo_unreadable`` (not an image Pillow can read of an accepted kind),
``photo_too_large`` (too many pixels).
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_SIDE = 512  # pixels, the longer side of the stored photo
MAX_PIXELS = 40_000_000
ACCEPTED = frozenset({"JPEG", "PNG", "WEBP"})
QUALITY = 85


class PhotoRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def reencode(data: bytes) -> tuple[bytes, int, int]:
    """The stored JPEG of an uploaded image, and its width and height."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                if opened.format not in ACCEPTED:
                    raise PhotoRefused("photo_unreadable", "send a JPEG, PNG or WebP image")
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise PhotoRefused("photo_too_large", "the image has too many pixels")
                upright = ImageOps.exif_transpose(opened)
                upright.thumbnail((MAX_SIDE, MAX_SIDE))
                rgb = upright.convert("RGB")
                # a new image from the pixels only: no metadata can ride along
                clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    except PhotoRefused:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRefused("photo_unreadable", "the file is not a readable image") from None
    except (OSError, ValueError, SyntaxError):
        raise PhotoRefused("photo_unreadable", "the file is not a readable image") from None
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue(), clean.width, clean.height
