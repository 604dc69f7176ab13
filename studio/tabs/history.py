"""History: every image made, this session and earlier ones, read from the outputs folder, newest first.

A signed-in user sees only their own images, unless the operator started a shared gallery. Pick an image to
read its settings and send it to another tab. The list is built on the server from the outputs folder; the
browser only ever names an image by its place on the page.
"""
from __future__ import annotations

import gradio as gr

from pipelines.history import PAGE_SIZE, history_page
from studio.send_to import send_to_buttons

TITLE = "History"
TAB = "history"


def _whose(shared, request) -> str:
    if shared.history_user(request) is not None:
        return "your images"
    return "everyone's images" if shared.shared_gallery and shared.user_of(request) else "all images"


def build(registry, shared) -> None:
    entries, selected, page = gr.State([]), gr.State(None), gr.State(1)
    with gr.Row(equal_height=True):
        previous = gr.Button("◀ Newer", scale=1, min_width=80)
        where = gr.Markdown("", elem_classes="studio-history-page")
        following = gr.Button("Older ▶", scale=1, min_width=80)
        refresh = gr.Button("↻ Refresh", scale=1, min_width=80)
    with gr.Row(equal_height=False):
        with gr.Column(scale=7):
            gallery = gr.Gallery(label="Images", format="png", columns=6, height=640, object_fit="contain",
                                 elem_classes="studio-fit-640",
                                 buttons=["download", "fullscreen"], interactive=False, allow_preview=True)
        with gr.Column(scale=3):
            parameters = gr.Textbox(label="Parameters", lines=8, interactive=False, buttons=["copy"],
                              elem_classes="studio-parameters")
            send_to_buttons(shared, TAB, selected)

    def show_page(number, request: gr.Request = None):
        listing = history_page(registry.outputs, shared.history_user(request), page=number, per_page=PAGE_SIZE)
        items = [{"image": shared.show(e.path), "settings": e.settings, "parameters": e.parameters}
                 for e in listing.entries]
        if listing.total:
            note = (f"Page {listing.page} of {listing.pages} · {listing.total} image(s) · "
                    f"{_whose(shared, request)}")
        else:
            note = "Nothing yet: the images you make appear here, newest first."
        return {gallery: [(item["image"], e.caption) for item, e in zip(items, listing.entries)],
                entries: items, page: listing.page, where: note, selected: items[0] if items else None,
                parameters: items[0]["parameters"] if items else ""}

    outputs = [gallery, entries, page, where, selected, parameters]

    def newer(number, request: gr.Request = None):
        return show_page(number - 1, request)

    def older(number, request: gr.Request = None):
        return show_page(number + 1, request)

    for button, handler in ((refresh, show_page), (previous, newer), (following, older)):
        button.click(handler, inputs=page, outputs=outputs, api_visibility="private", concurrency_limit=None)

    def choose(items, event: gr.SelectData):
        if not items or not 0 <= event.index < len(items):
            return gr.skip(), gr.skip()
        return items[event.index], items[event.index]["parameters"]

    gallery.select(choose, inputs=entries, outputs=[selected, parameters], queue=False, api_visibility="private")

    def when_opened(tab: gr.Tab) -> None:
        """Opening the tab shows its first page: what was made since it was last looked at."""
        def first_page(request: gr.Request = None):
            return show_page(1, request)

        tab.select(first_page, outputs=outputs, api_visibility="private", concurrency_limit=None)

    return when_opened
