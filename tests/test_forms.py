"""Widget values become the right GenerationRequest, by field name; bad values are refused, naming the field."""
import gradio as gr
import pytest

from pipelines.requests import GenerationRequest, InvalidRequest
from studio.forms import FORM_FIELDS, build_request, parse_number_list
from studio.tabs.compare import plan
from studio.tabs.png_info import form_updates
from studio.widgets import checked_request, preview_interval

# What the txt2img widgets hand over: Numbers and Sliders give floats, Textboxes strings.
WIDGET_VALUES = {"prompt": "a large red circle in the top left on a blue background", "negative_prompt": None,
                 "model": "shapes", "scheduler": "DPM++ 2M Karras", "steps": 25.0, "guidance_scale": 7,
                 "width": 128.0, "height": "96", "seed": 1234.0, "num_images": 2.0}


def test_widget_values_become_typed_request_fields():
    request = build_request(**WIDGET_VALUES)
    assert request == GenerationRequest(prompt=WIDGET_VALUES["prompt"], negative_prompt="", model="shapes",
                                        scheduler="DPM++ 2M Karras", steps=25, guidance_scale=7.0, width=128,
                                        height=96, seed=1234, num_images=2)
    assert all(type(getattr(request, name)) is int for name in ("steps", "width", "height", "seed", "num_images"))
    assert type(request.guidance_scale) is float


def test_form_fields_are_request_fields():
    assert set(FORM_FIELDS) <= set(GenerationRequest.__dataclass_fields__)


@pytest.mark.parametrize("name, value", [
    ("steps", 20.5), ("steps", None), ("width", "wide"), ("height", ""), ("num_images", True),
    ("seed", 1.5), ("seed", -7), ("guidance_scale", "strong"), ("guidance_scale", float("nan")),
    ("model", ""), ("scheduler", None), ("prompt", 42), ("clip_skip", 1.5),
])
def test_bad_widget_value_is_refused_naming_its_field(name, value):
    with pytest.raises(InvalidRequest) as caught:
        build_request(**{**WIDGET_VALUES, name: value})
    assert caught.value.field == name
    assert str(caught.value).startswith(f"{name}:")


def test_missing_prompt_and_unknown_field_are_errors():
    without_prompt = {k: v for k, v in WIDGET_VALUES.items() if k != "prompt"}
    with pytest.raises(InvalidRequest) as caught:
        build_request(**without_prompt)
    assert caught.value.field == "prompt"
    with pytest.raises(TypeError, match="sampler"):
        build_request(**WIDGET_VALUES, sampler="Euler")  # a renamed widget must not be dropped silently


@pytest.mark.parametrize("name, value, allowed", [
    ("width", 100, "multiple of 8"), ("height", 1024, "64 to 256"), ("steps", 0, "1 to"),
    ("scheduler", "Bogus", "Euler a"), ("model", "no-such-model", "shapes"), ("num_images", 9, "1 to 8"),
    ("clip_skip", 0, "1 to 12"), ("clip_skip", 13.0, "1 to 12"), ("clip_skip", 4, "1 to 3 for 'shapes'"),
])
def test_checked_request_shows_engine_range_as_gr_error(registry, name, value, allowed):
    with pytest.raises(gr.Error) as caught:
        checked_request(registry, **{**WIDGET_VALUES, name: value})
    assert caught.value.message.startswith(f"{name}:")
    assert allowed in caught.value.message


def test_checked_request_accepts_good_values(registry):
    assert checked_request(registry, **WIDGET_VALUES).steps == 25
    assert checked_request(registry, **WIDGET_VALUES, clip_skip=2.0).clip_skip == 2  # a Slider's float


def test_png_settings_set_clip_skip_and_its_absence_means_one(registry):
    form = {name: f"<{name} widget>" for name in (*FORM_FIELDS, "clip_skip")}
    assert form_updates(registry, form, {"prompt": "x", "clip_skip": 2})["<clip_skip widget>"] == 2
    assert form_updates(registry, form, {"prompt": "x"})["<clip_skip widget>"] == 1  # A1111 omits "Clip skip: 1"


def test_number_lists_for_the_compare_axes():
    assert parse_number_list("steps", "10, 20;30,") == [10, 20, 30]
    assert parse_number_list("guidance_scale", "3.5, 7", float) == [3.5, 7.0]
    assert parse_number_list("steps", "  ") == []
    with pytest.raises(InvalidRequest, match="^steps:"):
        parse_number_list("steps", "10, twenty")


def test_compare_plan_uses_one_seed_for_every_cell(registry):
    cells, rows, columns = plan(registry, prompt="a blue star", negative_prompt="", model="shapes",
                                schedulers=["Euler a", "DDIM"], steps=20, guidance_scale=7.0, seed=-1,
                                axis="Steps", axis_values="4, 8, 12")
    assert rows == ["steps 4", "steps 8", "steps 12"] and columns == ["Euler a", "DDIM"]
    assert [[cell.scheduler for cell in row] for row in cells] == [["Euler a", "DDIM"]] * 3
    assert [[cell.steps for cell in row] for row in cells] == [[4, 4], [8, 8], [12, 12]]
    seeds = {cell.seed for row in cells for cell in row}
    assert len(seeds) == 1 and seeds.pop() >= 0
    assert all(cell.num_images == 1 and cell.width == 128 for row in cells for cell in row)


def test_compare_plan_refuses_bad_axis_values(registry):
    common = dict(prompt="x", negative_prompt="", model="shapes", steps=20, guidance_scale=7.0, seed=1)
    with pytest.raises(gr.Error, match="steps"):
        plan(registry, **common, schedulers=["Euler a"], axis="Steps", axis_values="")
    with pytest.raises(gr.Error, match="guidance_scale: must be from 0 to 30"):
        plan(registry, **common, schedulers=["Euler a"], axis="CFG scale", axis_values="7, 45")
    with pytest.raises(gr.Error, match="sampler"):
        plan(registry, **common, schedulers=[], axis="Samplers only", axis_values="")
    with pytest.raises(gr.Error, match="model: unknown model 'nope'"):
        plan(registry, **{**common, "model": "nope"}, schedulers=["DDIM"], axis="Samplers only", axis_values="")


def test_png_settings_fill_the_txt2img_form_except_what_is_not_here(registry):
    form = {name: f"<{name} widget>" for name in FORM_FIELDS}
    settings = {"prompt": "a red circle", "negative_prompt": "blurry", "model": "v1-5-pruned-emaonly",
                "scheduler": "DPM++ 2M Karras", "steps": 30, "guidance_scale": 7.5, "seed": 99,
                "width": 128, "height": 128, "loras": []}
    with pytest.warns(UserWarning, match="Kept the current model"):
        updates = form_updates(registry, form, settings)
    assert updates == {"<prompt widget>": "a red circle", "<negative_prompt widget>": "blurry",
                       "<scheduler widget>": "DPM++ 2M", "<schedule_type widget>": "Karras", "<steps widget>": 30,
                       "<guidance_scale widget>": 7.5, "<seed widget>": 99, "<width widget>": 128,
                       "<height widget>": 128}  # the unknown model is kept as it was; loras has no widget


def test_preview_interval_gives_about_ten_previews():
    assert preview_interval(4) == 1 and preview_interval(20) == 2 and preview_interval(150) == 15


def test_the_lora_picker_becomes_the_requests_loras():
    request = build_request(**WIDGET_VALUES, loras=["ink", "models/bold.safetensors"], lora_weight=0.6)
    assert request.loras == (("ink", 0.6), ("models/bold.safetensors", 0.6))
    assert build_request(**WIDGET_VALUES, loras=[], lora_weight=0.6).loras == ()
    assert build_request(**WIDGET_VALUES, loras=None, lora_weight=None).loras == ()  # nothing chosen
    with pytest.raises(InvalidRequest, match="^loras:"):
        build_request(**WIDGET_VALUES, loras=["ink"], lora_weight="strong")
    with pytest.raises(InvalidRequest, match="^loras:"):
        build_request(**WIDGET_VALUES, loras=[""], lora_weight=1.0)


def test_api_lora_strings_take_a_key_or_a_path_and_an_optional_weight():
    from studio.forms import lora_strings

    assert lora_strings(["ink:0.8", "models/bold.safetensors", r"C:\loras\x.safetensors:-0.5"]) == \
        [("ink", 0.8), ("models/bold.safetensors", 1.0), (r"C:\loras\x.safetensors", -0.5)]
    assert lora_strings(None) == [] and lora_strings([]) == [] and lora_strings("ink") == [("ink", 1.0)]
    with pytest.raises(InvalidRequest, match="^loras: an entry is empty"):
        lora_strings(["ink", " "])


def test_png_loras_fill_the_lora_picker(registry):
    form = {name: f"<{name} widget>" for name in (*FORM_FIELDS, "loras", "lora_weight")}
    updates = form_updates(registry, form, {"prompt": "a red circle", "loras": [("ink", 0.7), ("bold", 0.7)]})
    assert updates["<loras widget>"] == ["ink", "bold"] and updates["<lora_weight widget>"] == 0.7
    assert form_updates(registry, form, {"prompt": "a red circle"})["<loras widget>"] == []  # none: cleared
    with pytest.warns(UserWarning, match="one, set to 0.5"):
        updates = form_updates(registry, form, {"prompt": "x", "loras": [("ink", 0.5), ("bold", 1.0)]})
    assert updates["<lora_weight widget>"] == 0.5
