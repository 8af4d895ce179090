"""What an upload becomes (``server/attachment_files.py``), sans I/O: the type from the content
only, images written anew without metadata and with a thumbnail, PDFs kept, names made safe."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from server.attachment_files import MAX_SIDE, FileRefused, display_name, prepare, sniff


def image_bytes(kind: str, size: tuple[int, int] = (800, 600), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    image = Image.new(mode, size, (10, 20, 30, 128) if mode == "RGBA" else (10, 20, 30))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (1.0, 2.0, 3.0)}
    image.save(out, kind, exif=exif)
    return out.getvalue()


def test_the_type_is_judged_from_the_content_never_the_name() -> None:
    assert sniff(image_bytes("JPEG")) == "image/jpeg"
    assert sniff(image_bytes("PNG")) == "image/png"
    assert sniff(image_bytes("WEBP")) == "image/webp"
    assert sniff(b"%PDF-1.7\n%...") == "application/pdf"
    for refused in (
        b"<html><script>alert(1)</script></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        b"GIF89a\x01\x00\x01\x00",
        b"PK\x03\x04 a zip, or a docx",
        b"MZ\x90\x00 an executable",
        b"just text",
    ):
        with pytest.raises(FileRefused) as refused_as:
            prepare(refused, "x.jpg")
        assert (refused_as.value.status, refused_as.value.code) == (415, "unsupported_type")


def test_images_are_written_anew_without_metadata_with_a_thumbnail() -> None:
    for kind, stored in (("JPEG", "image/jpeg"), ("WEBP", "image/jpeg"), ("PNG", "image/png")):
        prepared = prepare(image_bytes(kind), "photo")
        assert prepared.content_type == stored, kind
        with Image.open(io.BytesIO(prepared.data)) as shown:
            assert len(shown.getexif()) == 0 and "exif" not in shown.info
            assert shown.size == (800, 600)
        assert prepared.thumbnail is not None
        with Image.open(io.BytesIO(prepared.thumbnail)) as thumb:
            assert thumb.format == "JPEG" and thumb.size == (320, 240)


def test_a_transparent_png_stays_png_and_a_large_photo_is_shrunk() -> None:
    prepared = prepare(image_bytes("PNG", (100, 50), "RGBA"), "shot.png")
    with Image.open(io.BytesIO(prepared.data)) as shown:
        assert shown.mode == "RGBA"
    big = prepare(image_bytes("JPEG", (4000, 3000)), "big.jpg")
    assert (big.width, big.height) == (MAX_SIDE, MAX_SIDE * 3 // 4)


def test_a_pdf_is_kept_as_it_is_without_a_thumbnail() -> None:
    data = b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"
    prepared = prepare(data, "判决书.PDF")
    assert (prepared.data, prepared.thumbnail, prepared.name) == (data, None, "判决书.pdf")


def test_an_empty_or_truncated_file_is_refused() -> None:
    with pytest.raises(FileRefused) as empty:
        prepare(b"", "x.jpg")
    assert empty.value.code == "empty_file"
    with pytest.raises(FileRefused) as truncated:
        prepare(image_bytes("JPEG")[:40], "x.jpg")
    assert truncated.value.code == "unsupported_type"


def test_names_are_made_safe_to_show_and_to_offer() -> None:
    assert display_name("../../etc/passwd", "image/jpeg") == "passwd.jpg"
    assert display_name("C:\\Users\\me\\IMG 1.HEIC", "image/jpeg") == "IMG 1.jpg"
    assert display_name("a\u202eb\x00c\n.jpg", "image/png") == "abc.png"
    assert display_name("%E5%AE%B6.jpg", "image/jpeg") == "家.jpg"
    assert display_name("", "application/pdf") == "file.pdf"
    assert display_name("...", "application/pdf") == "file.pdf"
    assert len(display_name("x" * 500 + ".jpg", "image/jpeg")) == 120


def test_an_image_promising_too_many_pixels_is_refused_before_it_is_decoded() -> None:
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, "PNG")  # small on disk, 48 million pixels
    with pytest.raises(FileRefused) as refused:
        prepare(out.getvalue(), "bomb.png")
    assert (refused.value.status, refused.value.code) == (413, "too_many_pixels")
