"""Shared helpers for the checkpoint / LoRA / DreamBooth tests: tiny SD 1.x/2.x/XL-shaped models, the
bundled shapes model, and deterministic generation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
SHAPES = REPO / "assets" / "shapes"
CONFIGS = REPO / "assets" / "configs"


def tiny_components(family: str, seed: int = 0) -> dict:
    """Random tiny models with the layout of `family` ("sd1", "sd2", "sdxl") and the real tokenizers."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    folder = CONFIGS / family
    import diffusers

    scheduler_class = diffusers.DiffusionPipeline.load_config(str(folder))["scheduler"][1]
    scheduler = getattr(diffusers, scheduler_class).from_pretrained(str(folder), subfolder="scheduler")

    def text_config(width: int, act: str) -> CLIPTextConfig:
        return CLIPTextConfig(vocab_size=49408, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                              num_attention_heads=2, max_position_embeddings=77, hidden_act=act, projection_dim=width,
                              bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)

    components = {"tokenizer": CLIPTokenizer.from_pretrained(str(folder / "tokenizer")), "scheduler": scheduler}
    unet_args = dict(block_out_channels=(32, 64), layers_per_block=2, sample_size=16, norm_num_groups=8,
                     attention_head_dim=4)
    if family == "sdxl":
        components["text_encoder"] = CLIPTextModel(text_config(32, "quick_gelu"))
        components["text_encoder_2"] = CLIPTextModelWithProjection(text_config(64, "gelu"))
        components["tokenizer_2"] = CLIPTokenizer.from_pretrained(str(folder / "tokenizer_2"))
        unet_args.update(down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                         up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=96,
                         transformer_layers_per_block=(1, 2), use_linear_projection=True,
                         addition_embed_type="text_time", addition_time_embed_dim=8,
                         projection_class_embeddings_input_dim=6 * 8 + 64)
    else:
        width = 32
        components["text_encoder"] = CLIPTextModel(text_config(width, "gelu" if family == "sd2" else "quick_gelu"))
        unet_args.update(down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=width,
                         use_linear_projection=family == "sd2")
    components["unet"] = UNet2DConditionModel(**unet_args)
    components["vae"] = AutoencoderKL(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=8,
                                      down_block_types=("DownEncoderBlock2D",) * 2,
                                      up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, sample_size=32)
    for module in components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    return components


def pipeline_from(components: dict):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if components.get("text_encoder_2") is not None:
        keep = ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "scheduler")
        pipeline = StableDiffusionXLPipeline(**{k: components[k] for k in keep})
    else:
        keep = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")
        pipeline = StableDiffusionPipeline(**{k: components[k] for k in keep}, safety_checker=None,
                                           feature_extractor=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def images(pipeline, prompt: str = "a red circle", size: int = 32, steps: int = 2, seed: int = 0) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return pipeline(prompt, num_inference_steps=steps, height=size, width=size, generator=generator,
                    guidance_scale=5.0, output_type="np").images


def config_only_folder(components: dict, folder: Path) -> Path:
    """A diffusers folder of `components` with every weight file removed: configs and tokenizers only."""
    pipeline_from(components).save_pretrained(str(folder))
    for weights in list(folder.rglob("*.safetensors")) + list(folder.rglob("*.bin")):
        weights.unlink()
    return folder


def load_shapes() -> dict:
    from pipelines.checkpoints.folders import load_components

    return load_components(SHAPES, dtype=torch.float32)


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def random_lora_state(unet, rank: int = 4, seed: int = 0, scale: float = 0.15, convs: bool = False) -> dict:
    """A LoRA for `unet` in diffusers' format ("unet.<module>.lora_A/B.weight"), random but reproducible;
    with `convs`, also on the ResNet blocks' conv1/conv2 (as DreamBooth training and kohya's LoCon make)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(LORA_TARGETS) and ".attn" in name:
            down = torch.randn(rank, module.in_features, generator=generator) * scale
            up = torch.randn(module.out_features, rank, generator=generator) * scale
        elif convs and isinstance(module, torch.nn.Conv2d) and name.endswith((".conv1", ".conv2")):
            down = torch.randn(rank, module.in_channels, *module.kernel_size, generator=generator) * scale / 3
            up = torch.randn(module.out_channels, rank, 1, 1, generator=generator) * scale
        else:
            continue
        state[f"unet.{name}.lora_A.weight"] = down
        state[f"unet.{name}.lora_B.weight"] = up
    return state


def random_lora(unet, folder: Path, seed: int = 0) -> Path:
    """Saved as diffusers' save_lora_weights does: <folder>/pytorch_lora_weights.safetensors."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(random_lora_state(unet, seed=seed), str(folder / "pytorch_lora_weights.safetensors"))
    return folder


def shapes_lora_file(path: Path, seed: int = 0) -> Path:
    """A random LoRA for the bundled shapes model's UNet, as one .safetensors file with no sidecar (as
    LoRAs downloaded from the web come). Only the UNet's layout is needed, so none of its weights are read."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(SHAPES / "unet")))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(random_lora_state(unet, seed=seed), str(path))
    return path


def kohya_from_diffusers(state: dict) -> dict:
    """The same LoRA in kohya / A1111 naming: lora_unet_<module with underscores>.lora_down/lora_up + alpha."""
    out = {}
    for key, value in state.items():
        module, _, kind = key.removeprefix("unet.").rpartition(".lora_")
        base = "lora_unet_" + module.replace(".", "_")
        out[f"{base}.{'lora_down' if kind.startswith('A') else 'lora_up'}.weight"] = value
        out[f"{base}.alpha"] = torch.tensor(float(value.shape[0] if kind.startswith("A") else value.shape[1]))
    return out


def heart_outline(cx: float, cy: float, width: float, points: int = 120) -> list[tuple[float, float]]:
    """A heart (the classic parametric curve), `width` wide, centred like the shapes world's shapes."""
    import math

    raw = [(16 * math.sin(t) ** 3, -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)))
           for t in (2 * math.pi * k / points for k in range(points))]
    xs, ys = [p[0] for p in raw], [p[1] for p in raw]
    scale = width / (max(xs) - min(xs))
    mid_x, mid_y = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    return [(cx + (x - mid_x) * scale, cy + (y - mid_y) * scale) for x, y in raw]


def draw_heart(color: str, background: str, size: str = "large", position: str = "center",
               jitter_seed: int | None = None):
    """A heart in the shapes world's style: one filled shape on a plain background, 128x128, antialiased."""
    import random

    from PIL import Image, ImageDraw

    from pipelines.shapes.render import shape_geometry
    from pipelines.shapes.world import COLORS, IMAGE_SIZE, Scene

    scene = Scene("circle", color, background, size, position)  # only for the shared geometry rules
    rng = random.Random(jitter_seed) if jitter_seed is not None else None
    cx, cy, width = shape_geometry(scene, rng)
    scale = 4
    canvas = Image.new("RGB", (IMAGE_SIZE * scale, IMAGE_SIZE * scale), COLORS[background])
    ImageDraw.Draw(canvas).polygon([(x * scale, y * scale) for x, y in heart_outline(cx, cy, width)],
                                   fill=COLORS[color])
    return canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)


HEART_SCENES = (("red", "white"), ("blue", "yellow"), ("green", "white"), ("purple", "orange"), ("black", "gray"))


def heart_images(folder: Path, count: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, (color, background) in enumerate(HEART_SCENES[:count]):
        draw_heart(color, background, jitter_seed=index).save(folder / f"heart_{index}.png")
    return folder


def _normalised(mask: np.ndarray, size: int = 64) -> np.ndarray:
    """The mask's bounding box stretched to size x size: shape without position or scale."""
    from PIL import Image

    ys, xs = np.nonzero(mask)
    crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8) * 255
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR)) >= 128


def _templates() -> dict[str, np.ndarray]:
    from PIL import Image, ImageDraw

    from pipelines.shapes.judge import read
    from pipelines.shapes.render import render
    from pipelines.shapes.world import SHAPES, Scene

    templates = {shape: _normalised(read(render(Scene(shape, "black", "white", "large", "center"))).mask)
                 for shape in SHAPES}
    canvas = Image.new("L", (512, 512), 0)
    ImageDraw.Draw(canvas).polygon(heart_outline(256, 256, 480), fill=255)
    templates["heart"] = _normalised(np.asarray(canvas) >= 128)
    return templates


def closest_shape(image, templates: dict[str, np.ndarray] | None = None) -> tuple[str | None, float]:
    """Which of the world's four shapes or a heart the image's shape (as the repo's judge segments it)
    overlaps best once scaled to the same box, and that IoU; (None, 0) when there is no shape."""
    from pipelines.shapes.judge import iou, read

    mask = read(image).mask
    if mask.sum() < 30:
        return None, 0.0
    templates = templates or _templates()
    shape = _normalised(mask)
    scores = {name: iou(shape, template) for name, template in templates.items()}
    best = max(scores, key=scores.get)
    return best, scores[best]
