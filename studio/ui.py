"""The Gradio app: a header, one tab per module in TABS, the API-only endpoints, and the queue.

    demo = build_demo(registry)
    demo.launch(**launch_options(registry))

Each tab module has `TITLE` and `build(registry, shared)`, called inside `with gr.Tab(TITLE, id=...)`; what
`build` returns, when callable, is called with the gr.Tab (to wire its `select`).
`Shared` carries what tabs wire across each other (the txt2img form, the model dropdowns, the tabs, the
Send-to receivers, the runs of each browser tab).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import gradio as gr

from studio import api
from studio.results import served_copy
from studio.send_to import wire_send_to
from studio.sessions import RunBook
from studio.tabs import adapters, compare, history, img2img, inpaint, png_info, txt2img
from studio.tabs import dreambooth
from studio.widgets import refresh_handler, refresh_models

TABS: list[ModuleType] = [txt2img, img2img, inpaint, adapters, compare, png_info, history]
TABS.append(dreambooth)  # last: its finished run refreshes every model and LoRA picker built before it
SCRIPT = Path(__file__).resolve().parent / "static" / "studio.js"

CSS = """
.studio-title h1 { margin-bottom: 0; }
.studio-subtitle p { margin-top: 0; opacity: 0.75; }
.studio-progress { position: relative; min-height: 1.6rem; border-radius: 0.5rem; overflow: hidden;
                   background: var(--block-background-fill); border: 1px solid var(--border-color-primary); }
.studio-progress-fill { position: absolute; inset: 0 auto 0 0; background: var(--color-accent);
                        opacity: 0.45; transition: width 0.15s linear; }
.studio-progress-label { position: relative; display: block; text-align: center; line-height: 1.6rem;
                         padding: 0 0.5rem; font-size: 0.85rem; font-variant-numeric: tabular-nums; }
.studio-tool-button { min-width: 2.6rem !important; max-width: 3rem; }
.studio-send-to { gap: 0.4rem !important; flex-wrap: wrap; }
.studio-send-to button { flex: 0 1 auto !important; }
.studio-field input[type=number].studio-out-of-range { outline: 2px solid var(--error-border-color, #ef4444); }
/* A gallery gives a lone image the whole width as a square tile, taller than the gallery: cap each tile's
   height to what the gallery shows (its height less padding and label), and the image is letterboxed whole. */
.studio-fit-620 .thumbnail-item { max-height: 570px; }
.studio-fit-480 .thumbnail-item { max-height: 430px; }
.studio-fit-520 .thumbnail-item { max-height: 470px; }
.studio-fit-280 .thumbnail-item { max-height: 230px; }
.studio-fit-640 .thumbnail-item { max-height: 590px; }
/* Gradio's status (place in the queue, then the time running) at the right end of our progress bar */
.block:has(.studio-progress) > [data-testid="status-tracker"] {
    z-index: 5; inset: 50% 0.75rem auto auto !important; transform: translateY(-50%); width: max-content !important;
    height: 1.6rem !important; display: block; background: none !important; pointer-events: none; }
.block:has(.studio-progress) > [data-testid="status-tracker"] .progress-text {
    font-size: 0.8rem; line-height: 1.6rem; white-space: nowrap; position: static; margin: 0 !important;
    padding: 0 !important; transform: none !important; }
"""


@dataclass
class Shared:
    """Cross-tab wiring of one demo (never global: every build_demo call makes its own)."""

    tabs: gr.Tabs
    default_model: str
    concurrency_id: str = "generation"  # every generating event shares this, so the device limit holds
    concurrency_limit: int = 1
    shared_gallery: bool = False  # History shows everyone's images
    model_dropdowns: list[gr.Dropdown] = field(default_factory=list)
    lora_dropdowns: list[gr.Dropdown] = field(default_factory=list)
    refresh_buttons: list[gr.Button] = field(default_factory=list)  # rescan the models folder
    txt2img_form: dict[str, gr.components.Component] = field(default_factory=dict)
    receivers: dict = field(default_factory=dict)  # tab id -> studio.send_to.Receiver
    send_rows: list = field(default_factory=list)  # rows of Send-to buttons, filled once every tab is built
    on_load: list = field(default_factory=list)  # (fn, inputs, outputs) run when a page loads
    runs: RunBook = field(default_factory=RunBook)  # each browser tab's runs, for its Stop and Skip
    device_slots: threading.Semaphore | None = None  # held by each run's worker (see studio.runner)

    def __post_init__(self):
        if self.device_slots is None:
            self.device_slots = threading.BoundedSemaphore(self.concurrency_limit)

    def generation_options(self) -> dict:
        """Event options for anything that runs the model: one queue per device."""
        return {"concurrency_id": self.concurrency_id, "concurrency_limit": self.concurrency_limit}

    def pickers(self) -> list[gr.Dropdown]:
        """Every model and LoRA picker built so far: what a models-folder refresh updates."""
        return [*self.model_dropdowns, *self.lora_dropdowns]

    @staticmethod
    def user_of(request) -> str | None:
        """Whose images a request makes: the signed-in user (with --auth), else nobody in particular."""
        return getattr(request, "username", None) or None

    def history_user(self, request) -> str | None:
        """Whose images a request may list: its own, or everyone's with a shared gallery (or no sign-in)."""
        return None if self.shared_gallery else self.user_of(request)

    @staticmethod
    def show(path: str):
        """A saved image as a handler may return it: a copy in Gradio's cache (studio.results.served_copy);
        the outputs folder itself is never served (launch_options)."""
        return served_copy(path)

def tab_id(tab: ModuleType) -> str:
    return tab.__name__.rsplit(".", 1)[-1]


def _header(registry, default_model: str) -> None:
    gr.Markdown("# Diffusion Studio", elem_classes="studio-title")
    running = str(registry.dtype).removeprefix("torch.")
    if hasattr(registry, "fast_paths_for"):  # pipelines/fast/paths.py: what this machine runs the model in
        running = registry.fast_paths_for(registry.model_info(default_model).family).describe()
    gr.Markdown(f"Stable Diffusion in the browser, on diffusers. Running on **{registry.device}** "
                f"({running}); settings are saved in every PNG.", elem_classes="studio-subtitle")


def build_demo(registry, *, default_model: str = "shapes", concurrency_limit: int = 1,
               max_queue: int | None = 64, shared_gallery: bool = False) -> gr.Blocks:
    """The studio's Blocks, queue enabled; `concurrency_limit` generations run at once on the device.

    Signed-in users (--auth) each see only their own images in History; `shared_gallery` shows everyone's.
    """
    registry.model_info(default_model)  # an unknown default fails here, with the field named
    with gr.Blocks(title="Diffusion Studio") as demo:
        _header(registry, default_model)
        with gr.Tabs() as tabs:
            shared = Shared(tabs=tabs, default_model=default_model, concurrency_limit=concurrency_limit,
                            shared_gallery=shared_gallery)
            for tab in TABS:
                with gr.Tab(tab.TITLE, id=tab_id(tab)) as block:
                    wire = tab.build(registry, shared)  # may return a function wiring the tab's own events
                if callable(wire):
                    wire(block)
        api.add_endpoints(registry, shared)
        for button in shared.refresh_buttons:
            button.click(refresh_handler(registry, shared), outputs=shared.pickers(), api_visibility="private")
        wire_send_to(shared)

        def current_pickers() -> dict:
            """A page load shows the models and LoRAs the registry knows now (a LoRA trained since start-up)."""
            return refresh_models(registry, shared, rescan=False)

        demo.load(current_pickers, outputs=shared.pickers(), queue=False, api_visibility="private")
        for fn, inputs, outputs in shared.on_load:
            demo.load(fn, inputs=inputs, outputs=outputs, api_visibility="private")
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue)
    return demo


DEFAULT_MAX_UPLOAD_MB = 50


def launch_options(registry, *, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> dict:
    """Keyword arguments for `demo.launch` that every launch wants (look, keyboard, uploads, errors, files).

    No folder of ours is in `allowed_paths`: results reach the browser as copies in Gradio's cache
    (studio.results.served_copy, see Shared.show), so Gradio's file route serves nothing from the outputs or
    models folders and no one fetches another user's picture by its path.
    """
    return {"theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="sky"), "css": CSS,
            "js": SCRIPT.read_text(encoding="utf-8"), "allowed_paths": [],
            "max_file_size": int(max_upload_mb * 1024 * 1024), "show_error": True}
