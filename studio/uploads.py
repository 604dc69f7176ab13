"""Uploaded pictures, checked before anything decodes them, with errors that name the field.

The API events (`/txt2img`, `/adapter`, `/preprocess`, `/png_info`) run with `preprocess=False`: their handlers
get what the client sent, as sent (a number field may hold text, NaN, a list), and studio.forms converts it
field by field. A file then arrives as Gradio's file record (`{"path": ..., "orig_name": ...}`) whose path
Gradio has already checked to be an upload of this server; `upload_path` checks it again and the picture
goes through pipelines.untrusted_images (pixel limit first, then decoding).

In the UI, `checked_image` makes a gr.Image whose upload is checked the same way before Gradio opens it, so
a decompression bomb or a text file renamed .png gets a message instead of Gradio's processing traceback.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder, is_in_or_equal
from PIL import Image

from pipelines.requests import InvalidRequest, shown
from pipelines.untrusted_images import open_untrusted


def upload_path(field: str, payload) -> str | None:
    """The server-side path of an uploaded file record (None when nothing was sent)."""
    if payload is None or payload == "":
        return None
    path = payload.get("path") if isinstance(payload, dict) else None
    if not isinstance(path, str) or not path:
        raise InvalidRequest(field, f"must be an uploaded file (gradio_client: handle_file(PATH)), got {shown(payload)}")
    if not is_in_or_equal(path, get_upload_folder()):
        raise InvalidRequest(field, "must be a file uploaded to this studio")
    return path


def uploaded_image(field: str, payload) -> Image.Image | None:
    """The uploaded picture, decoded (None when nothing was sent)."""
    path = upload_path(field, payload)
    return None if path is None else open_untrusted(path, field)


def checked_image(**options) -> gr.Image:
    """A gr.Image (`options` as gr.Image takes them) whose uploads are refused by name when they are not
    pictures or are too large to decode, before Gradio opens them.

    The check wraps this one widget's preprocess: a gr.Image subclass would do the same, but Gradio writes a
    type stub (.pyi) beside every module that defines a component class.
    """
    image = gr.Image(**options)
    plain = image.preprocess
    field = (image.label or "image").lower()

    def preprocess(payload):
        path = getattr(payload, "path", None)
        try:
            if path:
                open_untrusted(Path(path), field, load=False).close()
            return plain(payload)
        except InvalidRequest as error:
            raise gr.Error(str(error), title="Invalid upload") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:  # e.g. a data: URL
            raise gr.Error(f"{field}: cannot read the upload as an image ({type(error).__name__})",
                           title="Invalid upload") from None

    image.preprocess = preprocess
    return image
