"""The metadata text an image carries, by name, whatever the container.

PNG: tEXt / zTXt / iTXt chunks, read here chunk by chunk (also those after the image data) with a size cap,
so a huge or broken chunk becomes a note instead of an exception. tEXt is Latin-1 by the standard, but several
studios (TensorArt among them) write UTF-8 there: valid UTF-8 is read as UTF-8.
JPEG / WebP: EXIF UserComment (A1111, Forge, SD.Next, Fooocus, SwarmUI) as "parameters", EXIF Make / Model
"workflow:" / "prompt:" (ComfyUI's WebP), EXIF MakerNote (Fooocus' scheme), and a JPEG comment.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from pipelines.metadata.settings import MAX_CHUNK_CHARS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
MAX_TEXT_TOTAL = 64 << 20  # all text chunks of one file together
EXIF_IFD, USER_COMMENT, MAKER_NOTE = 0x8769, 0x9286, 0x927C
IMAGE_DESCRIPTION, MAKE, MODEL, SOFTWARE = 0x010E, 0x010F, 0x0110, 0x0131


@dataclass
class ImageText:
    chunks: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    format: str = ""
    size: tuple[int, int] | None = None
    image: Image.Image | None = None  # kept open only for reading hidden (stealth) metadata


def _decode_latin1_or_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _inflate(data: bytes) -> bytes | None:
    """Decompressed chunk text, or None when it would exceed the cap."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_CHUNK_CHARS * 4 + 1)
    if len(out) > MAX_CHUNK_CHARS * 4 or inflater.unconsumed_tail:
        return None
    return out


def _text_chunk(kind: bytes, data: bytes) -> tuple[str, str | None]:
    """(keyword, text) of one text chunk; text None when it is too large once decompressed."""
    keyword, _, rest = data.partition(b"\0")
    name = keyword.decode("latin-1")
    if kind == b"tEXt":
        return name, _decode_latin1_or_utf8(rest)
    if kind == b"zTXt":
        inflated = _inflate(rest[1:])
        return name, None if inflated is None else _decode_latin1_or_utf8(inflated)
    compressed, rest = rest[:1] == b"\x01", rest[2:]  # iTXt: flag, method, language\0, translated\0, text
    _, _, rest = rest.partition(b"\0")
    _, _, rest = rest.partition(b"\0")
    if compressed:
        rest = _inflate(rest)
        if rest is None:
            return name, None
    return name, rest.decode("utf-8", errors="replace")


def read_png_chunks(stream, out: ImageText) -> None:
    """Every text chunk of a PNG stream into `out.chunks` (the last of a repeated keyword wins, as in PIL)."""
    total = 0
    while True:
        header = stream.read(8)
        if len(header) < 8:
            out.notes.append("the PNG ends before its IEND chunk (truncated file?)")
            return
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            return
        if kind == b"IHDR" and length >= 8:
            data = stream.read(length)
            out.size = struct.unpack(">II", data[:8])
            stream.seek(4, os.SEEK_CUR)
            continue
        if kind not in TEXT_CHUNKS:
            stream.seek(length + 4, os.SEEK_CUR)
            continue
        if length > MAX_CHUNK_CHARS * 4 or total + length > MAX_TEXT_TOTAL:
            name = stream.read(min(length, 80)).partition(b"\0")[0].decode("latin-1", "replace")
            out.notes.append(f"the {name!r} chunk ({length:,} bytes) is too large to read")
            stream.seek(length - min(length, 80) + 4, os.SEEK_CUR)
            continue
        data = stream.read(length)
        stream.seek(4, os.SEEK_CUR)  # CRC
        total += length
        if len(data) < length:
            out.notes.append("the PNG ends inside a text chunk (truncated file?)")
            return
        try:
            name, text = _text_chunk(kind, data)
        except (zlib.error, ValueError) as error:
            out.notes.append(f"a {kind.decode()} chunk could not be decoded ({error})")
            continue
        if text is None:
            out.notes.append(f"the {name!r} chunk is too large once decompressed; not read")
            continue
        out.chunks[name] = text


def _user_comment(value) -> str:
    """EXIF UserComment: an 8-byte charset prefix, then the text (A1111 writes UNICODE, UTF-16 big-endian)."""
    if isinstance(value, str):
        return value
    prefix, body = bytes(value[:8]), bytes(value[8:])
    if prefix == b"UNICODE\0":
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return body.decode("utf-16")
        # No byte order mark: mostly-ASCII text has its zero bytes first in big-endian, last in little-endian.
        zeros_first = body[0::2].count(0)
        zeros_last = body[1::2].count(0)
        return body.decode("utf-16-le" if zeros_last > zeros_first else "utf-16-be", errors="replace")
    if prefix in (b"ASCII\0\0\0", b"\0" * 8):
        return body.decode("utf-8", errors="replace").rstrip("\0")
    if prefix == b"JIS\0\0\0\0\0":
        return body.decode("shift_jis", errors="replace")
    return bytes(value).decode("utf-8", errors="replace").rstrip("\0")


def _exif_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\0")
    return str(value).rstrip("\0")


def read_exif(image: Image.Image, out: ImageText) -> None:
    try:
        exif = image.getexif()
        ifd = exif.get_ifd(EXIF_IFD)
    except Exception as error:  # PIL raises many types for broken EXIF blocks
        out.notes.append(f"the EXIF data could not be read ({error})")
        return
    # A1111 (piexif) puts UserComment in the Exif IFD where it belongs; Fooocus (PIL) puts it in IFD0.
    for tags in (ifd, exif):
        if USER_COMMENT in tags and "parameters" not in out.chunks:
            out.chunks["parameters"] = _user_comment(tags[USER_COMMENT])
        if MAKER_NOTE in tags and "exif MakerNote" not in out.chunks:
            out.chunks["exif MakerNote"] = _exif_text(tags[MAKER_NOTE])
    for tag, label in ((IMAGE_DESCRIPTION, "exif ImageDescription"), (MAKE, "exif Make"),
                       (MODEL, "exif Model"), (SOFTWARE, "exif Software")):
        if tag in exif:
            text = _exif_text(exif[tag])
            prefix, _, rest = text.partition(":")
            if prefix in ("prompt", "workflow") and rest.lstrip().startswith("{"):
                out.chunks[prefix] = rest  # ComfyUI's WebP: "prompt:{...}" / "workflow:{...}"
            elif "sui_image_params" in text and "parameters" not in out.chunks:
                out.chunks["parameters"] = text  # StableSwarmUI's early JPEGs
            else:
                out.chunks[label] = text


def _from_pil(image: Image.Image, out: ImageText) -> None:
    out.format, out.size = image.format or "", image.size
    for key, value in image.info.items():
        if isinstance(value, str):
            out.chunks[key] = value
    comment = image.info.get("comment")
    if isinstance(comment, bytes) and comment.strip():
        out.chunks["comment"] = comment.decode("utf-8", errors="replace")
    if image.info.get("exif") or image.format in ("JPEG", "WEBP", "TIFF"):
        read_exif(image, out)


def read_image_text(image_or_path) -> ImageText:
    """The metadata text of an image file (path or bytes-like) or of an open PIL image."""
    out = ImageText()
    if isinstance(image_or_path, Image.Image):
        _from_pil(image_or_path, out)
        out.image = image_or_path
        return out
    raw = image_or_path if isinstance(image_or_path, (bytes, bytearray)) else None
    with (io.BytesIO(raw) if raw is not None else open(Path(image_or_path), "rb")) as stream:
        if stream.read(8) == PNG_SIGNATURE:
            out.format = "PNG"
            read_png_chunks(stream, out)
            return out
    image = Image.open(io.BytesIO(raw) if raw is not None else Path(image_or_path))
    _from_pil(image, out)
    out.image = image
    return out


def image_for_pixels(image_or_path, text: ImageText) -> Image.Image:
    """The image itself, for metadata hidden in its pixels."""
    if text.image is not None:
        return text.image
    if isinstance(image_or_path, (bytes, bytearray)):
        return Image.open(io.BytesIO(image_or_path))
    return Image.open(Path(image_or_path))
