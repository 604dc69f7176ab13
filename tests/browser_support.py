"""The real-browser harness: Debian's Chromium driven by Playwright (never a downloaded browser), against
one studio launched in this process for a whole test module.

    with chromium() as browser:
        page = open_page(browser, url)
        ...
        keep_screenshot(page, "what-it-shows")   # test-artifacts/browser/what-it-shows.png

The studio runs on the real registry; `PacedRegistry` only waits after each step when a test asks for slow
steps (a long run to press Stop in, steps slower than the UI's heartbeat) and records how each run ended.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

from pipelines import GenerationCancelled, PipelineRegistry

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags this machine refuses Chromium's connections many at a time.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}


class PacedRegistry(PipelineRegistry):
    """The real registry; each step waits `step_seconds` (0: no wait), and each run's ending is recorded."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.step_seconds = 0.0
        self.endings: list[tuple[str, int]] = []  # ("finished" | "cancelled", steps seen)
        self.run_ended = threading.Event()

    def generate(self, request, on_step=None, should_stop=None, preview_every=0, **options):
        steps = []

        def paced(update):
            steps.append(update.step)
            if on_step:
                on_step(update)
            if self.step_seconds:
                time.sleep(self.step_seconds)

        try:
            result = super().generate(request, paced, should_stop, preview_every, **options)
            self.endings.append(("finished", len(steps)))
            return result
        except GenerationCancelled:
            self.endings.append(("cancelled", len(steps)))
            raise
        finally:
            self.run_ended.set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def chromium():
    """A headless Chromium, Debian's; an error says how to install it when it is missing."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        raise RuntimeError(f"no Chromium at {CHROMIUM}: install Debian's (apt-get install -y chromium) or set "
                           "STUDIO_CHROMIUM to a Chromium binary; the browser tests never download one")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str, context=None):
    """A page on the studio (a fresh browser profile unless `context` is given), once the UI is up."""
    context = context or browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector(".studio-generate")
    page.wait_for_timeout(500)  # page-load events (pickers, kept settings) have answered
    return page


def keep_screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def visible(page, selector: str):
    """The one element matching `selector` in the tab on screen (each tab has its own Generate, Stop...)."""
    return page.locator(selector).locator("visible=true").first


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title, exact=True).click()
    page.wait_for_timeout(300)


def progress_label(page) -> str:
    return visible(page, ".studio-progress-label").inner_text()


def wait_for_label(page, pattern: str, timeout: float = 60_000) -> str:
    """Wait until the visible progress label matches the regular expression `pattern`; returns it."""
    page.wait_for_function("""([pattern]) => {
        const label = [...document.querySelectorAll('.studio-progress-label')].find(l => l.offsetParent);
        return label && new RegExp(pattern).test(label.innerText);
    }""", arg=[pattern], timeout=timeout)
    return progress_label(page)


def toasts(page) -> list[str]:
    return [toast.inner_text().replace("\n", " ") for toast in page.locator(".toast-body").all()]


def wait_for_toast(page, text: str, timeout: float = 15_000) -> str:
    page.wait_for_function("""([text]) => [...document.querySelectorAll('.toast-body')]
        .some(t => t.innerText.includes(text))""", arg=[text], timeout=timeout)
    return next(t for t in toasts(page) if text in t)


def record_labels(page) -> None:
    """Keep every text the progress labels show from now on in window.studioLabels (a step is missed by no
    one: a MutationObserver sees each change)."""
    page.evaluate("""() => {
        window.studioLabels = [];
        const seen = () => document.querySelectorAll('.studio-progress-label').forEach(label => {
            if (label.offsetParent) {
                const text = label.innerText;
                if (window.studioLabels[window.studioLabels.length - 1] !== text) window.studioLabels.push(text);
            }
        });
        new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, characterData: true});
        seen();
    }""")


def recorded_labels(page) -> list[str]:
    return page.evaluate("() => window.studioLabels")


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the visible dropdown labelled `label`."""
    box = page.get_by_label(label, exact=True).locator("visible=true").first
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).locator("visible=true").first.click()


def set_number(page, label: str, value) -> None:
    """Type `value` into the visible number box of the slider or number field labelled `label`."""
    box = page.get_by_label(f"number input for {label}", exact=True).locator("visible=true")
    if box.count() == 0:
        box = page.get_by_label(label, exact=True).locator("visible=true")
    box.first.fill(str(value))
    box.first.press("Tab")


def hidden_image_parts(page, selector: str) -> list[str]:
    """Every image in the galleries matching `selector` that is drawn (object-fit: contain) beyond what its
    gallery shows: a description of each, so [] means every picture is seen whole."""
    return page.evaluate("""([selector]) => {
        const problems = [];
        document.querySelectorAll(selector).forEach(gallery => {
            if (!gallery.offsetParent) return;
            const wrap = gallery.querySelector('.grid-wrap') || gallery;
            const shown = wrap.getBoundingClientRect();
            gallery.querySelectorAll('img').forEach(img => {
                const box = img.getBoundingClientRect();
                const scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
                const w = img.naturalWidth * scale, h = img.naturalHeight * scale;
                const left = box.left + (box.width - w) / 2, top = box.top + (box.height - h) / 2;
                if (left < shown.left - 1 || top < shown.top - 1 || left + w > shown.right + 1 ||
                    top + h > shown.bottom + 1) {
                    problems.push(`${img.naturalWidth}x${img.naturalHeight} drawn at ${Math.round(left)},` +
                        `${Math.round(top)} ${Math.round(w)}x${Math.round(h)} in ${Math.round(shown.left)},` +
                        `${Math.round(shown.top)} ${Math.round(shown.width)}x${Math.round(shown.height)}`);
                }
            });
        });
        return problems;
    }""", [selector])


def draw_square(page, size: float = 70) -> None:
    """Draw a square outline with the mouse on the visible sketchpad (picking its brush first)."""
    page.get_by_role("button", name="Brush").locator("visible=true").first.click()
    canvas = page.locator("canvas").locator("visible=true").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    corners = [(cx - size, cy - size), (cx + size, cy - size), (cx + size, cy + size), (cx - size, cy + size),
               (cx - size, cy - size)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for x, y in corners[1:]:
        page.mouse.move(x, y, steps=12)
    page.mouse.up()
