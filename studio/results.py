"""How generation results are shown: gallery entries that keep their PNG metadata, and a summary text."""
from __future__ import annotations

import html
import json
import os

from gradio import processing_utils
from gradio.utils import get_upload_folder
from PIL import Image

from pipelines.metadata import REQUEST_KEY, PARAMETERS_KEY, a1111_parameters
from pipelines.requests import GeneratedImage, GenerationResult


def image_with_metadata(item: GeneratedImage) -> Image.Image:
    """A copy of the image carrying its parameters as PNG text, which Gradio keeps when it writes a PNG."""
    image = item.image.copy()
    image.info[PARAMETERS_KEY] = a1111_parameters(item.request)
    image.info[REQUEST_KEY] = json.dumps(item.request.to_json_dict(), ensure_ascii=False)
    return image


def served_copy(path: str) -> str:
    """A copy of a saved output in Gradio's upload cache, for a gallery to show and serve.

    The outputs folder itself is not among the paths Gradio serves (studio.ui.launch_options), so nobody can
    fetch an output by guessing its name (`outputs/<date>/00012-42.png`); the copy lives in a folder named
    by a keyed hash of its bytes, which only the one who was handed the image knows.
    """
    return processing_utils.save_file_to_cache(path, get_upload_folder())


def gallery_entries(result: GenerationResult) -> list[tuple[object, str]]:
    """(image, caption) pairs; the saved file when there is one, so a download is that very PNG."""
    return [(served_copy(item.path) if item.path else image_with_metadata(item), f"seed {item.seed}")
            for item in result.items]


def summary(result: GenerationResult) -> str:
    """The first image's parameters, as A1111 writes them, and what the run took."""
    seeds = ", ".join(str(seed) for seed in result.seeds)
    count = len(result.items)
    plural = "s" if count != 1 else ""
    lines = [a1111_parameters(result.items[0].request) if result.items else "",
             f"{count} image{plural} in {result.seconds:.1f} s; seed{plural}: {seeds}"]
    if result.paths:
        folders = sorted({os.path.dirname(path) for path in result.paths})
        names = ", ".join(os.path.basename(path) for path in result.paths)
        lines.append(f"Saved in {', '.join(folders)}: {names}")
    return "\n".join(lines)


def progress_html(done: int, total: int, note: str = "") -> str:
    """A progress bar for the denoising steps (plain HTML, so it updates with each step's yield)."""
    percent = 0 if total <= 0 else round(100 * min(max(done, 0), total) / total)
    label = html.escape(note or f"Step {done} / {total}")
    return (f'<div class="studio-progress" role="progressbar" aria-valuenow="{percent}" aria-valuemin="0" '
            f'aria-valuemax="100"><div class="studio-progress-fill" style="width:{percent}%"></div>'
            f'<span class="studio-progress-label">{label}</span></div>')


def done_html(result: GenerationResult) -> str:
    """The progress bar once a generation has finished."""
    return progress_html(1, 1, f"Done: {len(result.items)} image(s) in {result.seconds:.1f} s")


def queue_status_on(progress) -> dict:
    """Event options that show Gradio's own status (the place in the queue while waiting, then the time
    running) in the corner of our progress bar, without its spinner over the outputs."""
    return {"show_progress": "minimal", "show_progress_on": [progress]}
