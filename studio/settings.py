"""Settings that survive a reload, and saved prompt styles, kept in the browser (gr.BrowserState).

Both live in the browser's localStorage, per signed-in user name (two people sharing one browser profile
keep theirs apart): nothing is written on the server, so a shared studio or a Space never mixes one
visitor's prompts and styles with another's. Styles follow AUTOMATIC1111's (name, prompt, negative prompt,
`{prompt}` marks where the typed prompt goes); an operator's `styles.csv` in the models folder is offered to
everyone, read-only, so styles brought from A1111 work at once.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import gradio as gr

from pipelines.requests import InvalidRequest
from pipelines.styles import apply_style, make_style, read_styles_csv, styles_from_dicts, with_style

SETTINGS_KEY = "diffusion-studio-settings"
STYLES_KEY = "diffusion-studio-styles"
STYLES_FILE = "styles.csv"


def browser_secret(registry) -> str:
    """Stable across restarts of the same studio, so what a browser stored stays readable."""
    where = f"{Path(registry.outputs.root).resolve()}|{registry.models_dir}"
    return hashlib.sha256(f"diffusion-studio|{where}".encode()).hexdigest()


def _user(request) -> str:
    return getattr(request, "username", None) or ""


def remember_form(registry, shared, form: dict, restore) -> gr.BrowserState:
    """Keep `form`'s values in the browser as they change, and put them back when the page loads.

    `restore(registry, form, saved_values)` turns saved values into form updates (skipping what no longer
    applies, such as a model that was removed).
    """
    state = gr.BrowserState({}, storage_key=SETTINGS_KEY, secret=browser_secret(registry))
    names = list(form)

    def save(stored, *values, request: gr.Request = None):
        stored = dict(stored) if isinstance(stored, dict) else {}
        stored[_user(request)] = dict(zip(names, values))
        return stored

    def load(stored, request: gr.Request = None):
        saved = stored.get(_user(request)) if isinstance(stored, dict) else None
        updates = {component: gr.skip() for component in form.values()}
        if isinstance(saved, dict):
            updates.update(restore(registry, form, {k: v for k, v in saved.items() if k in form}))
        return updates

    # A text box is kept when it loses focus (not at every key press: one request each), the rest on change.
    triggers = [form[name].blur if isinstance(form[name], gr.Textbox) else form[name].change for name in names]
    gr.on(triggers, save, inputs=[state, *form.values()], outputs=state, queue=False, api_visibility="private",
          show_progress="hidden")
    shared.on_load.append((load, [state], list(form.values())))
    return state


def style_choices(registry, stored) -> list[str]:
    return [style.name for style in all_styles(registry, stored)]


def all_styles(registry, stored) -> list:
    own = styles_from_dicts(stored)
    folder = getattr(registry, "models_dir", None)
    operators = read_styles_csv(Path(folder) / STYLES_FILE) if folder else []
    names = {style.name for style in own}
    return own + [style for style in operators if style.name not in names]


def styles_panel(registry, shared, prompt: gr.Textbox, negative_prompt: gr.Textbox) -> None:
    """Pick styles and apply them to the prompts; save the prompts as a style; delete one of yours."""
    stored = gr.BrowserState({}, storage_key=STYLES_KEY, secret=browser_secret(registry))
    with gr.Accordion("Styles", open=False):
        with gr.Row(equal_height=True):
            chosen = gr.Dropdown(choices=style_choices(registry, []), value=[], multiselect=True, label="Styles",
                                 info="{prompt} in a style marks where your prompt goes", scale=4)
            apply = gr.Button("Apply to prompt", scale=1, min_width=100)
        with gr.Row(equal_height=True):
            name = gr.Textbox(label="Save the prompts as a style named", scale=4, max_lines=1)
            save = gr.Button("Save style", scale=1, min_width=100)
            delete = gr.Button("Delete chosen", scale=1, min_width=100)

    def keyed(value, request) -> list:
        return (value or {}).get(_user(request), []) if isinstance(value, dict) else []

    def apply_styles(value, names, text, negative, request: gr.Request = None):
        styles = {style.name: style for style in all_styles(registry, keyed(value, request))}
        for style_name in names or []:
            if style_name in styles:
                text, negative = apply_style(styles[style_name], text or "", negative or "")
        return text, negative

    def save_style(value, style_name, text, negative, request: gr.Request = None):
        try:
            style = make_style(style_name, text, negative)
            kept = with_style(styles_from_dicts(keyed(value, request)), style)
        except InvalidRequest as error:
            raise gr.Error(str(error), title="Style not saved", print_exception=False) from None
        value = dict(value) if isinstance(value, dict) else {}
        value[_user(request)] = [s.to_dict() for s in kept]
        gr.Info(f"Saved the style {style.name!r}.")
        return value, gr.Dropdown(choices=style_choices(registry, value[_user(request)]), value=[style.name]), ""

    def delete_styles(value, names, request: gr.Request = None):
        value = dict(value) if isinstance(value, dict) else {}
        kept = [s for s in styles_from_dicts(keyed(value, request)) if s.name not in (names or [])]
        value[_user(request)] = [s.to_dict() for s in kept]
        return value, gr.Dropdown(choices=style_choices(registry, value[_user(request)]), value=[])

    def load_choices(value, request: gr.Request = None):
        return gr.Dropdown(choices=style_choices(registry, keyed(value, request)))

    apply.click(apply_styles, inputs=[stored, chosen, prompt, negative_prompt], outputs=[prompt, negative_prompt],
                queue=False, api_visibility="private")
    save.click(save_style, inputs=[stored, name, prompt, negative_prompt], outputs=[stored, chosen, name],
               api_visibility="private", concurrency_limit=None)
    delete.click(delete_styles, inputs=[stored, chosen], outputs=[stored, chosen], queue=False,
                 api_visibility="private")
    shared.on_load.append((load_choices, [stored], [chosen]))
