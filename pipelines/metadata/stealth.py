"""Metadata hidden in the least significant bits of the pixels ("stealth pnginfo").

NovelAI writes its settings this way too, and the A1111 stealth-pnginfo extension does for `parameters`:
pixels are read column by column (x outer, y inner); the bits of the alpha channel ("stealth_png*") or of
R, G, B in turn ("stealth_rgb*") spell a 15-byte signature, a 32-bit big-endian bit count, then the data,
gzip-compressed for "*comp" and plain UTF-8 for "*info".
"""
from __future__ import annotations

import zlib

import numpy as np
from PIL import Image

from pipelines.metadata.settings import MAX_CHUNK_CHARS

SIGNATURES = {b"stealth_pnginfo": ("alpha", False), b"stealth_pngcomp": ("alpha", True),
              b"stealth_rgbinfo": ("rgb", False), b"stealth_rgbcomp": ("rgb", True)}
SIGNATURE_BITS = 15 * 8


def _bits(image: Image.Image, mode: str) -> np.ndarray:
    pixels = np.asarray(image.convert("RGBA" if mode == "alpha" else "RGB"))
    columns = pixels.transpose(1, 0, 2)  # x outer, y inner
    channel = columns[..., 3] if mode == "alpha" else columns[..., :3]
    return (channel & 1).reshape(-1).astype(np.uint8)


def read_stealth(image: Image.Image) -> tuple[str | None, str | None]:
    """(text, problem): the hidden text, or None and why it could not be read (None, None: nothing there)."""
    modes = ("alpha", "rgb") if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else ("rgb",)
    for mode in modes:
        bits = _bits(image, mode)
        if bits.size < SIGNATURE_BITS + 32:
            continue
        signature = np.packbits(bits[:SIGNATURE_BITS]).tobytes()
        if signature not in SIGNATURES or SIGNATURES[signature][0] != mode:
            continue
        length = int.from_bytes(np.packbits(bits[SIGNATURE_BITS:SIGNATURE_BITS + 32]).tobytes(), "big")
        start = SIGNATURE_BITS + 32
        if length <= 0 or length % 8 or length // 8 > MAX_CHUNK_CHARS or start + length > bits.size:
            return None, f"hidden {signature.decode()} data has an impossible length ({length} bits)"
        data = np.packbits(bits[start:start + length]).tobytes()
        if SIGNATURES[signature][1]:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                data = inflater.decompress(data, MAX_CHUNK_CHARS + 1)
            except zlib.error as error:
                return None, f"hidden {signature.decode()} data does not decompress ({error})"
            if len(data) > MAX_CHUNK_CHARS:
                return None, "hidden metadata is too large to read"
        return data.decode("utf-8", errors="replace"), None
    return None, None

