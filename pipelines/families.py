"""One record per model family and one per generation mode: every family difference is a lookup here.

    family = get_family(spec.family)           # InvalidRequest("model", ...) for a family nobody described
    family.limits.max_size                     # sizes, steps, guidance
    family.pipeline_class("inpaint")           # diffusers' StableDiffusion(XL)InpaintPipeline
    family.text_encoders                       # (tokenizer, encoder, embedding part) component names

The keys ("shapes", "sd1", "sd2", "sdxl") are public API. A family is recognised in a diffusers folder by the
text width its UNet attends to (`text_width`, plus "XL" in the pipeline class name), and in an original-layout
single file by `detect(keys)`, tried in `FAMILIES` order. Adding a family is adding a record (README, "Adding a
model family"); nothing else in the studio names a family.
Importing this module does no work: the diffusers classes are looked up by name when asked for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "assets" / "configs"
SHAPES_DIR = REPO_ROOT / "assets" / "shapes"


@dataclass(frozen=True)
class Limits:
    min_size: int
    max_size: int
    default_width: int
    default_height: int
    size_multiple: int = 8
    min_steps: int = 1
    max_steps: int = 150
    min_guidance: float = 0.0
    max_guidance: float = 30.0
    min_images: int = 1
    max_images: int = 8
    max_prompt_chars: int = 2000
    max_seed: int = 2**32 - 1


@dataclass(frozen=True)
class Mode:
    key: str
    label: str
    takes_image: bool = False  # an init picture (image to image, inpainting, outpainting)
    takes_mask: bool = False


MODES: dict[str, Mode] = {mode.key: mode for mode in (
    Mode("txt2img", "text to image"),
    Mode("adapter", "T2I-Adapter"),
    Mode("img2img", "image to image", takes_image=True),
    Mode("inpaint", "inpainting / outpainting", takes_image=True, takes_mask=True),
)}


# ---- what an original-layout checkpoint's weight names say ----------------------------------------------
UNET_PREFIX = "model.diffusion_model."
CONV_IN = UNET_PREFIX + "input_blocks.0.0.weight"
CLIP_TOKENS = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
FIRST_CROSS_ATTENTION = UNET_PREFIX + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
SHAPED_KEYS = (CONV_IN, CLIP_TOKENS, FIRST_CROSS_ATTENTION)  # the keys whose shapes detection reads
_SDXL_KEYS = ("conditioner.embedders.1.model.positional_embedding", UNET_PREFIX + "label_emb.0.0.weight")


@dataclass(frozen=True)
class CheckpointKeys:
    """A checkpoint's weight names, and the shapes of SHAPED_KEYS (when present)."""

    names: frozenset[str]
    shapes: Mapping[str, tuple[int, ...]]

    def prefixed(self, prefix: str) -> bool:
        return any(name.startswith(prefix) for name in self.names)


def _is_sdxl_file(keys: CheckpointKeys) -> bool:
    return any(name in keys.names for name in _SDXL_KEYS)


def _is_sd2_file(keys: CheckpointKeys) -> bool:
    context = keys.shapes.get(FIRST_CROSS_ATTENTION, (None,))[-1]
    return keys.prefixed("cond_stage_model.model.") or context == 1024


def _is_shapes_file(keys: CheckpointKeys) -> bool:
    from pipelines.catalog import read_json  # small JSON, read when a file is being identified

    config = read_json(SHAPES_DIR / "text_encoder" / "config.json")
    return keys.shapes.get(CLIP_TOKENS) == (config.get("vocab_size"), config.get("hidden_size"))


def _is_sd1_file(keys: CheckpointKeys) -> bool:
    return True  # OpenAI CLIP and 768-wide cross-attention: what is left once the others said no


@dataclass(frozen=True)
class DreamBoothDefaults:
    """What DreamBooth uses for a setting the user leaves out (the CLI's flags, the DreamBooth tab's fields).
    The SD families keep the usual recipe (diffusers' DreamBooth LoRA example and the trainers built on it:
    rank 4, 1e-4, about 400 steps of one picture, prior preservation only when asked for)."""

    steps: int = 400
    learning_rate: float = 1e-4  # a LoRA's; a full fine-tune takes 5e-6 in every family
    lora_rank: int = 4
    batch_size: int = 1
    prior_preservation: bool = False
    class_prompt: str | None = None  # what prior preservation draws when no class prompt is given
    num_class_images: int = 100
    prior_loss_weight: float = 1.0
    prior_target: str = "images"  # pipelines/dreambooth/config.py PRIOR_TARGETS
    # With prior_target "model": ordinary prompts of the family whose answers the prior keeps besides the class
    # prompt's (the base model's own prediction is the target, so no images are drawn for them).
    prior_prompts: Callable[[], Sequence[str]] | None = None


def _shapes_prior_prompts(count: int = 200) -> list[str]:
    """Captions of training scenes (never the evaluation's held-out ones), a fixed set."""
    import random

    from pipelines.shapes.world import caption, random_keep, training_scene

    rng = random.Random(0)
    return [caption(training_scene(rng), rng, random_keep(rng)) for _ in range(count)]


# The bundled model: the SD recipe does not teach it a new shape (five hearts: silhouette IoU with a heart
# 0.57 before, 0.51 after 300 steps). A shape needs room (rank 16) and more, larger steps (800 of 4 pictures
# at 2e-4); prior preservation toward the model's own predictions keeps its guidance-calibrated answers, for
# "a shape" and for ordinary captions (with "a shape" alone, shape colour fell 20 points), weighted 2 against
# the five pictures. Measured with seed 0 (README, "DreamBooth defaults"): 11 of 12 "a sks shape" images are
# hearts, ordinary prompts 95.5% -> 94.0%.
SHAPES_DREAMBOOTH = DreamBoothDefaults(steps=1000, learning_rate=2e-4, lora_rank=16, batch_size=4,
                                       prior_preservation=True, class_prompt="a shape", num_class_images=12,
                                       prior_loss_weight=2.0, prior_target="model",
                                       prior_prompts=_shapes_prior_prompts)


@dataclass(frozen=True)
class Family:
    key: str
    label: str
    limits: Limits
    text_width: int  # the UNet's cross_attention_dim: what tells a diffusers folder's family
    pipelines: Mapping[str, str]  # mode key -> diffusers pipeline class (loading, LoRA files, references)
    config_dir: Path  # diffusers configs to load a single file offline (4-channel UNet)
    inpaint_config_dir: Path | None  # the same for 9-channel inpainting UNets
    detect: Callable[[CheckpointKeys], bool]  # does an original-layout file hold this family?
    text_encoders: tuple[tuple[str, str, str], ...] = (("tokenizer", "text_encoder", ""),)
    pooled_text: bool = False  # SDXL: pooled text embeds and size/crop ids condition the UNet too
    clip_skip: bool = True  # False: Clip skip is ignored (SDXL, as in A1111)
    embedding_widths: tuple[int, ...] = ()  # token-vector widths of the text encoders (textual inversion)
    adapters: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # kind -> (source, description)
    adapter_factor: bool = False  # the adapter pipeline takes a conditioning factor (SDXL's)
    training_resolution: int = 512  # DreamBooth's default picture size
    dreambooth: DreamBoothDefaults = DreamBoothDefaults()  # DreamBooth's other defaults
    align_your_steps: tuple[float, ...] = ()  # NVIDIA's 10-step "Align Your Steps" sigmas

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(mode for mode in MODES if mode in self.pipelines)

    def pipeline_class(self, mode: str = "txt2img"):
        import diffusers

        if mode not in self.pipelines:
            from pipelines.requests import InvalidRequest

            raise InvalidRequest("model", f"{self.label} models have no {MODES[mode].label if mode in MODES else mode}"
                                          f" pipeline; modes offered: {', '.join(self.modes)}")
        return getattr(diffusers, self.pipelines[mode])

    def single_file_config(self, in_channels: int) -> Path:
        if in_channels == 9 and self.inpaint_config_dir is not None:
            return self.inpaint_config_dir
        return self.config_dir


def _sd_pipelines(prefix: str) -> dict[str, str]:
    return {"txt2img": f"{prefix}Pipeline", "adapter": f"{prefix}AdapterPipeline",
            "img2img": f"{prefix}Img2ImgPipeline", "inpaint": f"{prefix}InpaintPipeline"}


def _tencent(repo: str, description: str) -> tuple[str, str]:
    return f"TencentARC/{repo}", description


_AYS_SD1 = (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029)
_AYS_SDXL = (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029)

FAMILIES: dict[str, Family] = {family.key: family for family in (  # single files are tried in this order
    Family("sdxl", "SDXL", Limits(min_size=512, max_size=2048, default_width=1024, default_height=1024),
           text_width=2048, pipelines=_sd_pipelines("StableDiffusionXL"), config_dir=CONFIGS / "sdxl",
           inpaint_config_dir=CONFIGS / "sdxl-inpainting", detect=_is_sdxl_file,
           text_encoders=(("tokenizer", "text_encoder", "clip_l"), ("tokenizer_2", "text_encoder_2", "clip_g")),
           pooled_text=True, clip_skip=False, embedding_widths=(768, 1280), adapter_factor=True,
           adapters={"sketch": _tencent("t2i-adapter-sketch-sdxl-1.0", "sketch / PidiNet lines"),
                     "edge": _tencent("t2i-adapter-canny-sdxl-1.0", "Canny edges"),
                     "depth": _tencent("t2i-adapter-depth-midas-sdxl-1.0", "MiDaS depth, bright = near"),
                     "lineart": _tencent("t2i-adapter-lineart-sdxl-1.0", "line art, white on black"),
                     "openpose": _tencent("t2i-adapter-openpose-sdxl-1.0", "OpenPose skeleton")},
           training_resolution=1024, align_your_steps=_AYS_SDXL),
    Family("sd2", "SD 2.x", Limits(min_size=256, max_size=1024, default_width=512, default_height=512),
           text_width=1024, pipelines={k: v for k, v in _sd_pipelines("StableDiffusion").items() if k != "adapter"},
           config_dir=CONFIGS / "sd2", inpaint_config_dir=CONFIGS / "sd2-inpainting", detect=_is_sd2_file,
           embedding_widths=(1024,), training_resolution=768, align_your_steps=_AYS_SD1),
    Family("shapes", "shapes", Limits(min_size=64, max_size=256, default_width=128, default_height=128),
           # the bundled model was trained at 128x128; 64..256 keeps its 16x16 latent grid within reach
           text_width=128, pipelines=_sd_pipelines("StableDiffusion"), config_dir=SHAPES_DIR,
           inpaint_config_dir=None, detect=_is_shapes_file, embedding_widths=(128,),
           adapters={kind: (str(SHAPES_DIR / "adapters" / kind), description) for kind, description in (
               ("sketch", "outline strokes, white on black"), ("edge", "Canny edges, white on black"),
               ("depth", "depth map, bright = near"))},
           training_resolution=128, dreambooth=SHAPES_DREAMBOOTH, align_your_steps=_AYS_SD1),
    Family("sd1", "SD 1.x", Limits(min_size=256, max_size=1024, default_width=512, default_height=512),
           text_width=768, pipelines=_sd_pipelines("StableDiffusion"), config_dir=CONFIGS / "sd1",
           inpaint_config_dir=CONFIGS / "sd1-inpainting", detect=_is_sd1_file, embedding_widths=(768,),
           adapters={"sketch": _tencent("t2iadapter_sketch_sd15v2", "sketch / PidiNet lines"),
                     "depth": _tencent("t2iadapter_depth_sd15v2", "MiDaS depth, bright = near"),
                     "edge": _tencent("t2iadapter_canny_sd15v2", "Canny edges"),
                     "depth_zoe": _tencent("t2iadapter_zoedepth_sd15v1", "ZoeDepth depth map"),
                     "openpose": _tencent("t2iadapter_openpose_sd14v1", "OpenPose skeleton"),
                     "keypose": _tencent("t2iadapter_keypose_sd14v1", "keypose skeleton"),
                     "color": _tencent("t2iadapter_color_sd14v1", "coarse colour palette grid"),
                     "segmentation": _tencent("t2iadapter_seg_sd14v1", "ADE20K colour segmentation")},
           align_your_steps=_AYS_SD1),
)}


def get_family(key: str) -> Family:
    """The record of a family key; a clear InvalidRequest naming the known ones otherwise."""
    family = FAMILIES.get(key) if isinstance(key, str) else None
    if family is None:
        from pipelines.requests import InvalidRequest

        raise InvalidRequest("model", f"unknown model family {key!r}; this studio knows {', '.join(FAMILIES)} "
                                      "(a studio.json sidecar with \"family\" names it for a model it cannot tell)")
    return family


def family_of_text_width(width, class_name: str = "") -> str | None:
    """The family of a diffusers folder from its UNet's cross-attention width; None when no family has it."""
    if "XL" in class_name:
        return "sdxl"
    return next((f.key for f in FAMILIES.values() if f.text_width == width), None)


def family_of_checkpoint(keys: CheckpointKeys) -> str:
    return next(f.key for f in FAMILIES.values() if f.detect(keys))
