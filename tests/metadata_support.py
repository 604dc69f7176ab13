"""Building images with other studios' metadata byte by byte, from the formats' documented structure, so the
readers are tested against files made without our own writing code (and without PIL's PngInfo).

PNG: a chunk is length (4 bytes, big-endian), type, data, CRC-32 of type + data. tEXt: keyword NUL text
(Latin-1); zTXt: keyword NUL method(0) zlib-data; iTXt: keyword NUL flag method language NUL translated NUL
UTF-8 text. EXIF: a TIFF block ("Exif\\0\\0", then "MM" big-endian as piexif writes it) whose IFD0 points to
the Exif IFD (tag 0x8769), which holds UserComment (0x9286): an 8-byte charset prefix, then the text.
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def text(key: str, value: str, encoding: str = "latin-1") -> bytes:
    return chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode(encoding))


def ztxt(key: str, value: str) -> bytes:
    return chunk(b"zTXt", key.encode("latin-1") + b"\0\0" + zlib.compress(value.encode("latin-1")))


def itxt(key: str, value: str, compressed: bool = False) -> bytes:
    body = zlib.compress(value.encode("utf-8")) if compressed else value.encode("utf-8")
    return chunk(b"iTXt", key.encode("latin-1") + b"\0" + bytes([int(compressed), 0]) + b"\0\0" + body)


def json_text(key: str, value) -> bytes:
    return itxt(key, json.dumps(value, ensure_ascii=False))


def png(path: Path, *chunks: bytes, image: Image.Image | None = None, after_data: bool = True) -> Path:
    """A PNG of `image` (8x8 black by default) with the given chunks after the image data, or before it."""
    buffer = io.BytesIO()
    (image or Image.new("RGB", (8, 8))).save(buffer, format="PNG")
    data = buffer.getvalue()
    where = data.rindex(b"IEND") - 4 if after_data else data.index(b"IDAT") - 4
    path.write_bytes(data[:where] + b"".join(chunks) + data[where:])
    return path


def exif(user_comment: bytes | None = None, **ascii_tags: str) -> bytes:
    """An EXIF block as piexif.dump writes it (big-endian); ascii_tags by name: Make, Model, Software."""
    tag_ids = {"ImageDescription": 0x010E, "Make": 0x010F, "Model": 0x0110, "Software": 0x0131}
    ifd0 = sorted((tag_ids[name], 2, value.encode("utf-8") + b"\0") for name, value in ascii_tags.items())
    if user_comment is not None:
        ifd0.append((0x8769, 4, None))
    ifd0_size = 2 + 12 * len(ifd0) + 4
    data_offset = 8 + ifd0_size
    entries, blobs = [], b""
    for tag, kind, value in ifd0:
        if value is None:
            continue
        entries.append(struct.pack(">HHII", tag, kind, len(value), data_offset + len(blobs)))
        blobs += value
    exif_offset = data_offset + len(blobs)
    if user_comment is not None:
        entries.append(struct.pack(">HHII", 0x8769, 4, 1, exif_offset))
    out = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", len(entries)) + b"".join(entries)
    out += struct.pack(">I", 0) + blobs
    if user_comment is not None:
        out += struct.pack(">H", 1) + struct.pack(">HHII", 0x9286, 7, len(user_comment), exif_offset + 18)
        out += struct.pack(">I", 0) + user_comment
    return b"Exif\x00\x00" + out


def unicode_comment(value: str) -> bytes:
    """A1111's UserComment: piexif.helper.UserComment.dump(value, encoding="unicode")."""
    return b"UNICODE\0" + value.encode("utf-16-be")


def jpeg(path: Path, exif_block: bytes, fmt: str = "JPEG") -> Path:
    Image.new("RGB", (8, 8), "white").save(path, format=fmt, exif=exif_block)
    return path


def stealth(image: Image.Image, payload: bytes, signature: bytes) -> Image.Image:
    """Hide `payload` the way NovelAI / the stealth-pnginfo extension do: signature, 32-bit bit count, data,
    one bit per pixel in the alpha channel's lowest bit, pixels taken column by column."""
    message = signature + struct.pack(">I", len(payload) * 8) + payload
    bits = np.unpackbits(np.frombuffer(message, dtype=np.uint8))
    pixels = np.array(image.convert("RGBA"))
    height, width = pixels.shape[:2]
    assert bits.size <= width * height
    for i, bit in enumerate(bits):
        x, y = divmod(i, height)
        pixels[y, x, 3] = (pixels[y, x, 3] & 0xFE) | bit
    return Image.fromarray(pixels, "RGBA")
