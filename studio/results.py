"""How generation results are shown: gallery entries that keep their PNG metadata, a summary text, the
progress bar (with speed and time left), and what a result hands to the Send-to buttons."""
from __future__ import annotations

import html
import json
import os
import time
from typing import Callable

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


def caption(item: GeneratedImage) -> str:
    text = f"seed {item.seed}"
    if item.request.variation_strength > 0:
        text += f" · variation {item.request.variation_seed} ×{item.request.variation_strength:g}"
    if item.skipped_at is not None:
        text += f" · skipped at step {item.skipped_at}"
    return text


def shown_file(item: GeneratedImage, show: Callable[[str], object] | None = None):
    """The saved file when there is one (so a download is that very PNG), else the image with its metadata.
    `show` turns a saved path into what may be handed to the browser (a cache copy, `served_copy`)."""
    if item.path:
        return (show or served_copy)(item.path)
    return image_with_metadata(item)


def gallery_entries(result: GenerationResult, show: Callable[[str], object] | None = None) -> list[tuple]:
    """(image, caption) pairs, in the order the images were made."""
    return [(shown_file(item, show), caption(item)) for item in result.items]


def send_payloads(result: GenerationResult, show: Callable[[str], object] | None = None) -> list[dict]:
    """One Send-to payload per gallery entry: the picture and its own settings (request field names)."""
    return [{"image": shown_file(item, show), "settings": item.request.to_json_dict()} for item in result.items]


def queue_status_on(progress) -> dict:
    """Event options that show Gradio's own status (the place in the queue while waiting, then the time
    running) in the corner of our progress bar, without its spinner over the outputs."""
    return {"show_progress": "minimal", "show_progress_on": [progress]}


def summary(result: GenerationResult) -> str:
    """The first image's parameters, as A1111 writes them, and what the run took."""
    if not result.items:
        return "No image was finished."
    seeds = ", ".join(str(seed) for seed in result.seeds)
    count = len(result.items)
    plural = "s" if count != 1 else ""
    lines = [a1111_parameters(result.items[0].request),
             f"{count} image{plural} in {result.seconds:.1f} s; seed{plural}: {seeds}"]
    if result.paths:
        folders = sorted({os.path.dirname(path) for path in result.paths})
        names = ", ".join(os.path.basename(path) for path in result.paths)
        lines.append(f"Saved in {', '.join(folders)}: {names}")
    skipped = sum(item.skipped_at is not None for item in result.items)
    if skipped:
        lines.append(f"{skipped} skipped (shown, not saved)")
    return "\n".join(lines)


def progress_html(done: int, total: int, note: str = "") -> str:
    """A progress bar for the denoising steps (plain HTML, so it updates with each step's yield)."""
    percent = 0 if total <= 0 else round(100 * min(max(done, 0), total) / total)
    label = html.escape(note or f"Step {done} / {total}")
    return (f'<div class="studio-progress" role="progressbar" aria-valuenow="{percent}" aria-valuemin="0" '
            f'aria-valuemax="100"><div class="studio-progress-fill" style="width:{percent}%"></div>'
            f'<span class="studio-progress-label">{label}</span></div>')


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class StepClock:
    """Speed and time left of a run, from the steps seen so far (measured from the first step on, so the
    model's loading does not count as slowness)."""

    def __init__(self, now: Callable[[], float] = time.monotonic):
        self._now = now
        self._first: tuple[int, float] | None = None
        self.step, self.total = 0, 0
        self._rate: float | None = None

    def update(self, step: int, total: int) -> None:
        now = self._now()
        if self._first is None or step < self._first[0]:
            self._first = (step, now)
        elif now > self._first[1] and step > self._first[0]:
            self._rate = (step - self._first[0]) / (now - self._first[1])
        self.step, self.total = step, total

    def label(self, steps_per_image: int | None = None) -> str:
        """"Step 24 / 150 · 3.1 it/s · 0:41 left" ("Image 2 / 4 · step 3 / 20 ..." for several images)."""
        if steps_per_image and self.total > steps_per_image:
            image, within = divmod(max(self.step - 1, 0), steps_per_image)
            text = f"Image {image + 1} / {self.total // steps_per_image} · step {within + 1} / {steps_per_image}"
        else:
            text = f"Step {self.step} / {self.total}"
        speed = self.speed()
        return f"{text} · {speed}" if speed else text

    def speed(self) -> str:
        """"3.1 it/s · 0:41 left" (or "2.4 s/it · ..." when a step takes longer than a second); "" at first."""
        if not self._rate:
            return ""
        rate = f"{self._rate:.1f} it/s" if self._rate >= 1 else f"{1 / self._rate:.1f} s/it"
        return f"{rate} · {duration((self.total - self.step) / self._rate)} left"

    def html(self, steps_per_image: int | None = None) -> str:
        return progress_html(self.step, self.total, self.label(steps_per_image))


def done_html(result: GenerationResult, stopped: bool = False) -> str:
    """The progress bar once a generation has finished (or was stopped, keeping what it finished)."""
    count = len(result.items)
    if stopped:
        return progress_html(0, 1, f"Stopped: {count} image(s) finished before the stop were kept")
    return progress_html(1, 1, f"Done: {count} image(s) in {result.seconds:.1f} s")
