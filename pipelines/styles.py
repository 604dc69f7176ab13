"""Prompt styles as AUTOMATIC1111 keeps them (styles.csv: name, prompt, negative_prompt).

Applying a style to a prompt puts the prompt where the style says `{prompt}`; a style without `{prompt}` is
appended after a comma. The negative prompt is merged the same way.
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from pipelines.requests import InvalidRequest

MAX_STYLES = 200
MAX_NAME_CHARS = 64


@dataclass(frozen=True)
class Style:
    name: str
    prompt: str = ""
    negative_prompt: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def merge_prompt(style_text: str, prompt: str) -> str:
    if "{prompt}" in style_text:
        return style_text.replace("{prompt}", prompt)
    return ", ".join(part for part in (prompt.strip(), style_text.strip()) if part)


def apply_style(style: Style, prompt: str, negative_prompt: str) -> tuple[str, str]:
    """(prompt, negative prompt) with `style` applied."""
    return merge_prompt(style.prompt, prompt), merge_prompt(style.negative_prompt, negative_prompt)


def make_style(name, prompt, negative_prompt) -> Style:
    """A style from user input; InvalidRequest names what is wrong."""
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise InvalidRequest("style", "give the style a name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidRequest("style", f"a name is at most {MAX_NAME_CHARS} characters, got {len(name)}")
    prompt, negative_prompt = prompt or "", negative_prompt or ""
    if not prompt.strip() and not negative_prompt.strip():
        raise InvalidRequest("style", "a style needs a prompt or a negative prompt; type one first")
    return Style(name, prompt, negative_prompt)


def styles_from_dicts(items) -> list[Style]:
    """Styles kept as plain dicts (e.g. in the browser); malformed entries are dropped."""
    styles = []
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip():
            styles.append(Style(item["name"].strip(), str(item.get("prompt") or ""),
                                str(item.get("negative_prompt") or "")))
    return styles[:MAX_STYLES]


def with_style(styles: list[Style], style: Style) -> list[Style]:
    """`styles` with `style` added, or replacing the one of the same name."""
    kept = [s for s in styles if s.name != style.name]
    if len(kept) >= MAX_STYLES:
        raise InvalidRequest("style", f"at most {MAX_STYLES} styles can be kept; delete one first")
    return kept + [style]


def read_styles_csv(path: str | Path) -> list[Style]:
    """An AUTOMATIC1111 styles.csv (name, prompt, negative_prompt columns); [] when there is none."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(encoding="utf-8-sig", newline="") as f:
        return styles_from_dicts(csv.DictReader(f))

