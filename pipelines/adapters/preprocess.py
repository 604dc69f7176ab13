"""Preprocessors: a plain image in, a condition map in the adapters' convention out.

Convention: white strokes/edges on black for sketch, edge and line art; bright = near for depth; RGB at
exactly the generation size. `PREPROCESSORS` (name -> spec, public keys) lists them with their settings;
`prepare_condition` is what generation calls for each `AdapterInput`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from PIL import Image

from ..requests import AdapterInput, InvalidRequest, shown
from . import sketch
from .catalog import ADAPTERS
from .depth import DepthEstimators
from .image_io import load_condition_image

FIELD = "adapters"
WEIGHT_RANGE = (0.0, 4.0)  # the same range the core validates (pipelines.validation)
STROKE_KINDS = ("sketch", "edge", "lineart")  # white lines on black
GRAY_KINDS = STROKE_KINDS + ("depth", "depth_zoe")  # single-channel maps (colour ones keep their colours)
ALL_KINDS = tuple(sorted({kind for table in ADAPTERS.values() for kind in table}))
# What `preprocess=True` runs for each kind; kinds without an entry take their maps as they are.
# Sketches use PidiNet where controlnet-aux and its weights are here, else the built-in extractor (with a note).
DEFAULT_PREPROCESSOR = {"sketch": "pidinet", "lineart": "sketch", "edge": "canny", "depth": "depth",
                        "depth_zoe": "depth", "color": "color", "openpose": "openpose"}


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    low: float | None = None  # numbers: the allowed range
    high: float | None = None
    choices: tuple[str, ...] = ()  # text: the allowed values (empty = any text)
    help: str = ""

    def check(self, value: Any) -> Any:
        if isinstance(self.default, str):
            value = "" if value is None else str(value)
            if self.choices and value not in self.choices:
                raise InvalidRequest(FIELD, f"option {self.name!r} must be one of {list(self.choices)}, "
                                            f"got {value!r}")
            return value
        kind = type(self.default)
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise InvalidRequest(FIELD, f"option {self.name!r} must be a number from {self.low} to {self.high}, "
                                        f"got {value!r}") from None
        if kind is int and number != float(value):
            raise InvalidRequest(FIELD, f"option {self.name!r} must be a whole number, got {value!r}")
        if not self.low <= number <= self.high:
            raise InvalidRequest(FIELD, f"option {self.name!r} must be from {self.low} to {self.high}, "
                                        f"got {value!r}")
        return number


@dataclass(frozen=True)
class Context:
    kind: str
    depth: DepthEstimators


@dataclass(frozen=True)
class Preprocessor:
    name: str
    label: str
    run: Callable[[Image.Image, dict, Context], tuple[Image.Image, str]]  # fitted RGB -> (map, note)
    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class PreprocessResult:
    image: Image.Image  # the condition map, RGB, exactly the asked size
    preprocessor: str  # the preprocessor that was asked for
    note: str = ""  # what actually ran, when it differs (an optional extra missing), else ""


def _as_is(image: Image.Image, options: dict, context: Context) -> tuple[Image.Image, str]:
    polarity = options["polarity"]
    if context.kind in STROKE_KINDS:
        return sketch.drawing_to_map(image, polarity), ""
    if context.kind in GRAY_KINDS:
        gray = image.convert("L")
        return sketch.drawing_to_map(gray, "invert" if polarity == "invert" else "keep"), ""
    return image, ""


def _canny(image: Image.Image, options: dict, context: Context) -> tuple[Image.Image, str]:
    if options["low"] > options["high"]:
        raise InvalidRequest(FIELD, f"option 'low' ({options['low']}) must not exceed 'high' ({options['high']})")
    return sketch.canny(image, options["low"], options["high"]), ""


def _sketch(image: Image.Image, options: dict, context: Context) -> tuple[Image.Image, str]:
    return sketch.classical_sketch(image, options["threshold"], options["thickness"]), ""


def _learned_sketch(method: str, label: str):
    def run(image: Image.Image, options: dict, context: Context) -> tuple[Image.Image, str]:
        lines = sketch.learned_sketch(image, method)
        if lines is not None:
            return lines, ""
        note = (f"{label} needs the optional controlnet-aux package (with torchvision) and its annotator "
                f"weights; the built-in sketch extractor was used instead")
        return sketch.classical_sketch(image, options["threshold"], options["thickness"]), note
    return run


def _depth(image: Image.Image, options: dict, context: Context) -> tuple[Image.Image, str]:
    return context.depth.estimate(image, options["model"] or None), ""


def _color(image: Image.Image, options: dict, context: Context) -> tuple[Image.Image, str]:
    return sketch.color_grid(image, options["cell"]), ""


def _openpose(image: Image.Image, options: dict, context: Context) -> tuple[Image.Image, str]:
    folder = sketch.annotator_folder("openpose")
    if folder is None:
        files = " ".join(sketch.ANNOTATOR_FILES["openpose"])
        raise InvalidRequest(FIELD, f"pose extraction needs {files} from {sketch.ANNOTATORS_REPO} in the Hugging "
                                    f"Face cache (hf download {sketch.ANNOTATORS_REPO} {files}); or upload a pose "
                                    "map and turn preprocessing off")
    try:
        from controlnet_aux import OpenposeDetector
    except Exception as error:  # noqa: BLE001 - import fails with RuntimeError without torchvision
        raise InvalidRequest(FIELD, "pose extraction needs the optional controlnet-aux package (with "
                                    "torchvision); upload a pose map and turn preprocessing off "
                                    f"({type(error).__name__})") from error
    detector = OpenposeDetector.from_pretrained(folder)
    return detector(image).convert("RGB").resize(image.size, Image.LANCZOS), ""


_POLARITY = Option("polarity", "auto", choices=("auto", "keep", "invert"),
                   help="auto: line maps drawn dark on light paper are inverted to white on black")
_LINE_OPTIONS = (Option("threshold", 0.15, 0.0, 1.0, help="drop lines weaker than this"),
                 Option("thickness", 1, 1, 7, help="line width in pixels"))

PREPROCESSORS: dict[str, Preprocessor] = {
    "as-is": Preprocessor("as-is", "As is (a map you already have, or a drawing)", _as_is, (_POLARITY,)),
    "canny": Preprocessor("canny", "Canny edges (OpenCV)", _canny,
                          (Option("low", 100, 0, 255, help="weaker gradients are never edges"),
                           Option("high", 200, 0, 255, help="stronger gradients are always edges"))),
    "sketch": Preprocessor("sketch", "Sketch lines (built-in)", _sketch, _LINE_OPTIONS),
    "pidinet": Preprocessor("pidinet", "PidiNet lines (controlnet-aux)", _learned_sketch("pidinet", "PidiNet"),
                            _LINE_OPTIONS),
    "hed": Preprocessor("hed", "HED lines (controlnet-aux)", _learned_sketch("hed", "HED"), _LINE_OPTIONS),
    "depth": Preprocessor("depth", "Depth estimation (DPT / Depth Anything)", _depth,
                          (Option("model", "", help="a local folder or a cached hub id; empty: the first found"),)),
    "color": Preprocessor("color", "Colour palette grid", _color, (Option("cell", 64, 4, 256),)),
    "openpose": Preprocessor("openpose", "OpenPose (controlnet-aux)", _openpose),
}


def preprocessors_for(kind: str) -> list[str]:
    """The preprocessors that make sense for a kind, its default first after 'as-is'."""
    default = DEFAULT_PREPROCESSOR.get(kind)
    lines = ["sketch", "pidinet", "hed", "canny"] if kind in STROKE_KINDS else []
    names = ["as-is", *([default] if default else []), *lines]
    return list(dict.fromkeys(names))


def _check_kind(kind: str) -> None:
    if kind not in ALL_KINDS:
        raise InvalidRequest(FIELD, f"adapter kind must be one of {list(ALL_KINDS)}, got {kind!r}")


def resolve_options(preprocessor: str, options: dict | None) -> dict:
    """Every option of `preprocessor`, checked, defaults filled in; unknown names are an error."""
    if preprocessor not in PREPROCESSORS:
        raise InvalidRequest(FIELD, f"preprocessor must be one of {list(PREPROCESSORS)}, got {preprocessor!r}")
    spec = PREPROCESSORS[preprocessor]
    given = dict(options or {})
    allowed = {option.name: option for option in spec.options}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise InvalidRequest(FIELD, f"preprocessor {preprocessor!r} has no option {unknown[0]!r}; "
                                    f"its options are {sorted(allowed) or 'none'}")
    return {name: option.check(given.get(name, option.default)) for name, option in allowed.items()}


def _check_map_size(width, height) -> None:
    """A map no model takes is refused before any pixel is made (1e300 x 64 would overflow, 50000 x 50000
    fill the memory)."""
    from pipelines.catalog import FAMILY_LIMITS

    high = max(limits.max_size for limits in FAMILY_LIMITS.values())
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= high:
            raise InvalidRequest(name, f"the condition map's {name} must be a whole number from 8 to {high}, "
                                       f"got {shown(value)}")


def preprocess_image(kind: str, image, width: int, height: int, preprocessor: str | None = None,
                     options: dict | None = None, depth: DepthEstimators | None = None) -> PreprocessResult:
    """Turn `image` (PIL, path or bytes) into a `kind` condition map of exactly (width, height).
    `preprocessor` None: the kind's default extractor."""
    _check_kind(kind)
    _check_map_size(width, height)
    name = preprocessor or DEFAULT_PREPROCESSOR.get(kind, "as-is")
    settings = resolve_options(name, options)
    fitted = load_condition_image(image, width, height)
    context = Context(kind, depth if depth is not None else DepthEstimators())
    condition, note = PREPROCESSORS[name].run(fitted, settings, context)
    condition = condition.convert("RGB")
    if condition.size != (width, height):
        condition = condition.resize((width, height), Image.LANCZOS)
    return PreprocessResult(condition, name, note)


def check_adapter_input(inp: AdapterInput) -> None:
    _check_kind(inp.kind)
    low, high = WEIGHT_RANGE
    if not isinstance(inp.weight, (int, float)) or not low <= float(inp.weight) <= high:
        raise InvalidRequest(FIELD, f"the {inp.kind!r} adapter weight must be from {low} to {high}, "
                                    f"got {inp.weight!r}")


def prepare_condition(inp: AdapterInput, width: int, height: int, *,
                      depth: DepthEstimators | None = None) -> Image.Image:
    """The map fed to the adapter for one `AdapterInput`: RGB, exactly (width, height). Without `preprocess`
    the image is taken as a map (a sketchpad drawing is turned white-on-black); with it, the kind's
    extractor runs (options may name another: ("preprocessor", "pidinet"))."""
    check_adapter_input(inp)
    options = dict(inp.options)
    preprocessor = options.pop("preprocessor", None) or (None if inp.preprocess else "as-is")
    return preprocess_image(inp.kind, inp.image, width, height, preprocessor, options, depth).image


def condition_for_adapter(condition: Image.Image, in_channels: int) -> Image.Image:
    """What the diffusers adapter pipeline wants: single-channel ("L") maps for adapters trained on one
    channel (config.in_channels == 1, e.g. the SD 1.5 sketch/canny and SDXL sketch/lineart ones)."""
    return condition.convert("L") if in_channels == 1 else condition.convert("RGB")
