"""Opening pictures that strangers send: refused with a message naming the field, never a crash or a hang.

Pillow reads only the header when a file is opened, so the pixel count is known before any pixel is decoded:
a 50 kB PNG can decode to 20000x20000 (400 million pixels, 1.2 GB in RGB), and Pillow itself only warns
below 179 million. Anything larger than MAX_INPUT_PIXELS is refused first. What Pillow cannot read (a
text file, truncated or corrupt data, oversized text chunks) becomes InvalidRequest as well.
"""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from pipelines.requests import InvalidRequest

MAX_INPUT_PIXELS = 64_000_000  # 8000x8000: larger than any photo a model here is given, far below a bomb
_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)


def open_untrusted(source: str | Path | bytes, field: str, *, load: bool = True,
                   max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """The picture in a file (or bytes), checked before decoding; `load=False` reads the header only."""
    name = "the uploaded bytes" if isinstance(source, (bytes, bytearray)) else Path(source).name
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit comes first
            image = Image.open(stream)
        width, height = image.size
        if width * height > max_pixels:
            image.close()
            raise InvalidRequest(field, f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} million); "
                                        f"pictures of at most {max_pixels / 1e6:.0f} million pixels are accepted")
        if load:
            image.load()
    except InvalidRequest:
        raise
    except Image.DecompressionBombError as error:  # Pillow refuses at open, before we see the size
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(pixels[1]) / 1e6:.0f} million pixels" if pixels else "over 179 million pixels"
        raise InvalidRequest(field, f"{name} is {size}; pictures of at most {max_pixels / 1e6:.0f} million "
                                    "pixels are accepted") from None
    except _READ_ERRORS as error:
        raise InvalidRequest(field, f"cannot read {name} as an image ({type(error).__name__}: "
                                    f"{str(error).splitlines()[0][:200] if str(error) else 'no detail'})") from None
    return image
