"""Property-based tests of request validation: whatever a client sends, the answer is a valid request or an
InvalidRequest naming the field, never another exception. Also the text parsers that read untrusted input.

Hypothesis draws the values; the example counts are capped so the module runs in seconds.
"""
from __future__ import annotations

import decimal
import math
import re
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipelines.catalog import shapes_spec
from pipelines.metadata import A1111_PARAM_RE, a1111_pairs, parse_parameters
from pipelines.requests import AdapterInput, GenerationRequest, InvalidRequest
from pipelines.validation import validate_request
from studio.adapter_form import api_input, parse_options
from studio.forms import EXTRA_FIELDS, FORM_FIELDS, build_request, lora_strings, parse_number_list

SHAPES = shapes_spec()
REQUEST_FIELDS = {f.name for f in fields(GenerationRequest)}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like a number to someone: what people type, and what breaks naive parsers.
NUMBER_TEXT = st.sampled_from(["20", " 20 ", "20.0", "20.5", "-1", "0", "1e3", "1e400", "-1e400", "nan", "NaN",
                               "inf", "-inf", "Infinity", "0x10", "1_000", "٣", "", "   ", "−5", "20 steps",
                               ]) | st.integers(4000, 6000).map(lambda n: "9" * n)
ANY_VALUE = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-2**80, max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308]),
    st.text(max_size=20), NUMBER_TEXT, st.integers(100_000, 100_001).map(lambda n: "x" * n),
    st.binary(max_size=8), st.complex_numbers(max_magnitude=10), st.just(complex(math.nan, 1)),
    st.decimals(allow_nan=True), st.just(decimal.Decimal("1e999999")),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.floats()), max_size=3),
    st.tuples(st.text(max_size=5), st.floats()),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()), st.just(Image.new("RGB", (2, 2))),
)
# A field's value: mostly anything, sometimes a plausible one so that later checks are reached too.
PLAUSIBLE = {"prompt": st.text(max_size=40), "negative_prompt": st.text(max_size=40), "model": st.just("shapes"),
             "scheduler": st.sampled_from(["Euler a", "DDIM", "DPM++ 2M Karras"]),
             "steps": st.integers(-5, 200), "guidance_scale": st.floats(-5, 40), "width": st.integers(0, 300),
             "height": st.integers(0, 300), "seed": st.integers(-3, 2**33), "num_images": st.integers(-1, 10),
             "adapter_conditioning_factor": st.floats(-1, 2), "lora_weight": st.floats(-6, 6),
             "loras": st.lists(st.text(max_size=8), max_size=2),
             "schedule_type": st.sampled_from(["Automatic", "Karras", "Exponential", "Uniform", "karras", "Nope"]),
             "clip_skip": st.integers(-1, 14), "batch_count": st.integers(-1, 120),
             "variation_seed": st.integers(-3, 2**33), "variation_strength": st.floats(-1, 2),
             "step_cache": st.integers(-2, 14)}
FORM_VALUES = st.fixed_dictionaries(
    {}, optional={name: st.one_of(ANY_VALUE, PLAUSIBLE[name])
                  for name in (*FORM_FIELDS, *EXTRA_FIELDS, "loras", "lora_weight", "adapter_conditioning_factor")})


def _checked_types(request: GenerationRequest) -> None:
    """What a request that passed validation must hold: the declared types, finite numbers."""
    for name in ("steps", "width", "height", "seed", "num_images", "clip_skip", "batch_count", "variation_seed",
                 "step_cache"):
        value = getattr(request, name)
        assert isinstance(value, int) and not isinstance(value, bool), (name, value)
    for name in ("guidance_scale", "adapter_conditioning_factor", "variation_strength"):
        value = getattr(request, name)
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), (name, value)
    assert isinstance(request.prompt, str) and isinstance(request.negative_prompt, str)
    assert all(isinstance(path, str) and path and math.isfinite(weight) for path, weight in request.loras)


@FUZZ
@given(values=FORM_VALUES)
def test_form_values_give_a_valid_request_or_name_the_field(values):
    """studio.forms.build_request then the engine's validation, as every UI handler and endpoint runs them."""
    allowed = set(values) | {"prompt"} | ({"loras"} if "lora_weight" in values else set())
    try:
        request = build_request(**values)
    except InvalidRequest as error:
        assert error.field in allowed, (error.field, values.keys())
        assert str(error).startswith(f"{error.field}: ")
        return
    try:
        validate_request(request, SHAPES)
    except InvalidRequest as error:
        assert error.field in REQUEST_FIELDS, error.field
        return
    _checked_types(request)


@FUZZ
@given(values=st.fixed_dictionaries({"prompt": st.one_of(ANY_VALUE, st.text(max_size=20))},
                                    optional={name: ANY_VALUE for name in REQUEST_FIELDS - {"prompt"}}))
def test_python_api_requests_are_refused_by_field(values):
    """GenerationRequest built directly (the Python API), then validated: the same contract."""
    try:
        request = GenerationRequest(**values)
        validate_request(request, SHAPES, adapter_kinds=_known_kind)
    except InvalidRequest as error:
        assert error.field in REQUEST_FIELDS, error.field
        return
    _checked_types(request)


def _known_kind(family, kind):
    from pipelines.adapter_runtime import check_adapter_kind

    return check_adapter_kind(family, kind)


@FUZZ
@given(kind=st.one_of(ANY_VALUE, st.sampled_from(["sketch", "edge", "depth", "nope"])), weight=ANY_VALUE,
       preprocess=ANY_VALUE, options=st.one_of(ANY_VALUE, st.dictionaries(st.one_of(st.text(max_size=3),
                                                                                     st.integers()), ANY_VALUE,
                                                                           max_size=3)))
def test_adapter_inputs_are_refused_by_field(kind, weight, preprocess, options):
    image = Image.new("RGB", (8, 8))
    try:
        adapter = AdapterInput(kind=kind, image=image, weight=weight, preprocess=preprocess, options=options)
        validate_request(GenerationRequest(prompt="a red circle", adapters=[adapter]), SHAPES,
                         adapter_kinds=_known_kind)
    except InvalidRequest as error:
        assert error.field == "adapters", error.field


@FUZZ
@given(kind=ANY_VALUE, weight=ANY_VALUE, preprocess=ANY_VALUE, preprocessor=ANY_VALUE, options=ANY_VALUE)
def test_api_adapter_values_are_refused_by_field(kind, weight, preprocess, preprocessor, options):
    """What `/adapter` does with one condition's values before the engine sees them."""
    try:
        api_input(kind, Image.new("RGB", (8, 8)), weight, preprocess, preprocessor, options)
    except InvalidRequest as error:
        assert error.field == "adapters"


@FUZZ
@given(values=st.one_of(ANY_VALUE, st.lists(st.one_of(ANY_VALUE, st.text(max_size=12)), max_size=3),
                        st.lists(st.sampled_from(["ink", "ink:0.5", "ink:nan", "ink:inf", ":", "a:b:c", "", " "]),
                                 max_size=3)))
def test_api_lora_strings_are_refused_by_field(values):
    try:
        pairs = lora_strings(values)
        GenerationRequest(prompt="x", loras=pairs)
        validate_request(GenerationRequest(prompt="x", loras=pairs), SHAPES)
    except InvalidRequest as error:
        assert error.field == "loras"


@FUZZ
@given(text=st.one_of(ANY_VALUE, st.text(alphabet="0123456789.,; -eEnaif", max_size=30)))
def test_compare_axis_values_are_refused_by_field(text):
    for kind in (int, float):
        try:
            parse_number_list("steps", text, kind)
        except InvalidRequest as error:
            assert error.field == "steps"


@FUZZ
@given(options=st.one_of(ANY_VALUE, st.text(alphabet='{}[]":,0123456789 abtrue', max_size=30)))
def test_preprocessor_options_text_is_refused_by_field(options):
    try:
        assert isinstance(parse_options(options), dict)
    except InvalidRequest as error:
        assert error.field == "adapters"


# ---- untrusted text: the PNG Info parser -------------------------------------------------------------------

PARAMETER_LINE = st.lists(st.sampled_from(list('ab1_ -/:,"\\\t(') + ["Steps", "é", ": "]), max_size=60).map("".join)


@settings(max_examples=600, deadline=None)
@given(line=st.one_of(PARAMETER_LINE, st.lists(PARAMETER_LINE, max_size=6).map("".join)))
def test_the_linear_pair_scan_finds_exactly_what_a1111s_pattern_finds(line):
    """A1111's own regular expression (re.findall) is the reference for which "key: value" pairs a line has."""
    assert a1111_pairs(line) == A1111_PARAM_RE.findall(line)


@pytest.mark.parametrize("line", [
    "x" * 2_000_000,                                  # a run of key characters with no ':' after it
    ("x" * 50 + ",") * 40_000,                        # many such runs
    " " * 2_000_000 + "-",                            # blanks before a character no key starts with
    "Steps: 20, " + "a" * 2_000_000 + ", Seed: 1, CFG scale: 7",  # a huge junk between real pairs
])
def test_a_megabyte_parameters_line_is_read_at_once(line):
    """With A1111's pattern under re.findall the first of these took hours (16,000 characters: 4 s, growing
    with the square of the length); the scan reads each in one pass."""
    import threading

    found = []
    reader = threading.Thread(target=lambda: found.append(parse_parameters("a prompt\n" + line)), daemon=True)
    reader.start()
    reader.join(timeout=120)  # a generous bound against a hang, not a speed measurement
    assert found, "reading the parameters never finished"
    if line.startswith("Steps"):
        assert found[0]["steps"] == 20 and found[0]["seed"] == 1


def test_a1111_values_are_read_as_before():
    text = ('a fox\nSteps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 12, Size: 512x768, '
            'Lora hashes: "ink: 1a2b, fox: 3c4d", Version: v1.10.1')
    line = text.splitlines()[-1]
    assert a1111_pairs(line) == A1111_PARAM_RE.findall(line)
    assert re.search("Lora hashes", line) and len(a1111_pairs(line)) == 8
    assert parse_parameters(text)["seed"] == 12


NAME_TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["..", "../..", "/", "/etc/passwd", "~", "a\x00b", "NUL",
                                                             "shapes/../shapes", "models/../../x"]),
                      st.integers(300, 5000).map(lambda n: "x" * n))


@FUZZ
@given(name=NAME_TEXT)
def test_model_and_lora_names_are_refused_by_field(registry, name):
    """A typed model or LoRA name reaches the file system: too long, a NUL, a folder that is no model."""
    for lookup, field in ((registry.model_info, "model"), (registry.lora_info, "loras")):
        try:
            lookup(name)
        except InvalidRequest as error:
            assert error.field == field
