"""The Gradio app: a header, one tab per module in TABS, the API-only endpoints, and the queue.

    demo = build_demo(registry)
    demo.launch(**launch_options(registry))

Each tab module has `TITLE` and `build(registry, shared)`, called inside `with gr.Tab(TITLE, id=...)`.
`Shared` carries what tabs wire across each other (the txt2img form, the model dropdowns, the tabs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import gradio as gr

from studio import api
from studio.tabs import adapters, compare, png_info, txt2img
from studio.tabs import dreambooth
from studio.widgets import refresh_handler

TABS: list[ModuleType] = [txt2img, adapters, compare, png_info]
TABS.append(dreambooth)  # last: its finished run refreshes every model and LoRA picker built before it

CSS = """
.studio-title h1 { margin-bottom: 0; }
.studio-subtitle p { margin-top: 0; opacity: 0.75; }
.studio-progress { position: relative; height: 1.6rem; border-radius: 0.5rem; overflow: hidden;
                   background: var(--block-background-fill); border: 1px solid var(--border-color-primary); }
.studio-progress-fill { position: absolute; inset: 0 auto 0 0; background: var(--color-accent);
                        opacity: 0.45; transition: width 0.15s linear; }
.studio-progress-label { position: relative; display: block; text-align: center; line-height: 1.6rem;
                         font-size: 0.85rem; font-variant-numeric: tabular-nums; }
.studio-tool-button { min-width: 2.6rem !important; max-width: 3rem; }
"""


@dataclass
class Shared:
    """Cross-tab wiring of one demo (never global: every build_demo call makes its own)."""

    tabs: gr.Tabs
    default_model: str
    concurrency_id: str = "generation"  # every generating event shares this, so the device limit holds
    concurrency_limit: int = 1
    model_dropdowns: list[gr.Dropdown] = field(default_factory=list)
    lora_dropdowns: list[gr.Dropdown] = field(default_factory=list)
    refresh_buttons: list[gr.Button] = field(default_factory=list)  # rescan the models folder
    txt2img_form: dict[str, gr.components.Component] = field(default_factory=dict)

    def generation_options(self) -> dict:
        """Event options for anything that runs the model: one queue per device."""
        return {"concurrency_id": self.concurrency_id, "concurrency_limit": self.concurrency_limit}

    def pickers(self) -> list[gr.Dropdown]:
        """Every model and LoRA picker built so far: what a models-folder refresh updates."""
        return [*self.model_dropdowns, *self.lora_dropdowns]


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
               max_queue: int | None = 64) -> gr.Blocks:
    """The studio's Blocks, queue enabled; `concurrency_limit` generations run at once on the device."""
    registry.model_info(default_model)  # an unknown default fails here, with the field named
    with gr.Blocks(title="Diffusion Studio") as demo:
        _header(registry, default_model)
        with gr.Tabs() as tabs:
            shared = Shared(tabs=tabs, default_model=default_model, concurrency_limit=concurrency_limit)
            for tab in TABS:
                with gr.Tab(tab.TITLE, id=tab_id(tab)):
                    tab.build(registry, shared)
        api.add_endpoints(registry, shared)
        for button in shared.refresh_buttons:
            button.click(refresh_handler(registry, shared), outputs=shared.pickers(), api_visibility="private")
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue)
    return demo


def launch_options(registry) -> dict:
    """Keyword arguments for `demo.launch` that every launch wants (look, files the app may serve)."""
    return {"theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="sky"), "css": CSS,
            "allowed_paths": [str(registry.outputs.root.resolve())]}
