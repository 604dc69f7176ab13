"""Aspect-ratio presets per model family, and prompt styles as AUTOMATIC1111 applies them."""
from __future__ import annotations

import pytest

from pipelines.aspect import aspect_presets
from pipelines.catalog import FAMILY_LIMITS
from pipelines.requests import InvalidRequest
from pipelines.styles import Style, apply_style, make_style, read_styles_csv, styles_from_dicts, with_style


@pytest.mark.parametrize("family", list(FAMILY_LIMITS))
def test_every_preset_is_a_size_the_family_takes_near_its_native_area(family):
    limits = FAMILY_LIMITS[family]
    presets = aspect_presets(limits)
    assert (presets[0].width, presets[0].height) == (limits.default_width, limits.default_height)
    for preset in presets:
        for side in (preset.width, preset.height):
            assert limits.min_size <= side <= limits.max_size and side % limits.size_multiple == 0
        w, h = (int(part) for part in preset.ratio.split(":"))
        assert abs(preset.width / preset.height - w / h) / (w / h) < 0.12
        area = preset.width * preset.height / (limits.default_width * limits.default_height)
        assert 0.85 < area < 1.15


def test_sdxl_presets_are_its_training_buckets():
    sizes = {(p.width, p.height) for p in aspect_presets(FAMILY_LIMITS["sdxl"])}
    assert {(1024, 1024), (1152, 896), (896, 1152), (1344, 768), (768, 1344)} <= sizes


def test_a_style_puts_the_prompt_where_it_says_or_after_a_comma():
    framed = Style("film", "analog photo of {prompt}, grain", "{prompt}, digital")
    assert apply_style(framed, "a fox", "blurry") == ("analog photo of a fox, grain", "blurry, digital")
    plain = Style("vivid", "vivid colours", "dull")
    assert apply_style(plain, "a fox", "") == ("a fox, vivid colours", "dull")
    assert apply_style(plain, "", "") == ("vivid colours", "dull")


def test_styles_are_named_replaced_by_name_and_refused_when_empty():
    styles = with_style([], make_style("a", "one", ""))
    styles = with_style(styles, make_style("a", "two", ""))
    assert [(s.name, s.prompt) for s in styles] == [("a", "two")]
    with pytest.raises(InvalidRequest, match="style: give the style a name"):
        make_style("  ", "x", "")
    with pytest.raises(InvalidRequest, match="style: a style needs a prompt"):
        make_style("empty", "", " ")
    assert styles_from_dicts([{"name": "ok", "prompt": "p"}, {"prompt": "no name"}, "junk"]) == [Style("ok", "p")]


def test_an_automatic1111_styles_csv_is_read(tmp_path):
    path = tmp_path / "styles.csv"
    path.write_text('name,prompt,negative_prompt\n"Cinematic","cinematic still of {prompt}, bokeh","cartoon, '
                    'anime"\nNone,,\n', encoding="utf-8")
    styles = read_styles_csv(path)
    assert styles[0] == Style("Cinematic", "cinematic still of {prompt}, bokeh", "cartoon, anime")
    assert read_styles_csv(tmp_path / "missing.csv") == []
