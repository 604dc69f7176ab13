"""k-diffusion's own `sampling.py` and `external.py` (what AUTOMATIC1111 and ComfyUI run), as a reference.

k-diffusion is on PyPI, but installing it pulls torchvision, which cannot sit beside the CPU torch here; its
package `__init__` imports torchvision too. So the wheel is fetched once with `pip download --no-deps` into
pytest's cache folder and its two modules are loaded on their own, under a private package name, with the one
helper they take from `utils` (append_dims) given here. Nothing of k-diffusion is committed to this repository.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
import zipfile
from pathlib import Path

K_DIFFUSION = "k-diffusion==0.1.1.post1"
PACKAGE = "_k_diffusion_reference"


def fetch_wheel(folder: Path) -> Path:
    wheels = sorted(folder.glob("k_diffusion-*.whl"))
    if not wheels:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", K_DIFFUSION,
                               "-d", str(folder)], capture_output=True, text=True)
        wheels = sorted(folder.glob("k_diffusion-*.whl"))
        if not wheels:
            raise RuntimeError(f"could not fetch {K_DIFFUSION} from the package index (needed as the reference "
                               f"for the sampler tests): {done.stderr.strip()[-500:]}")
    return wheels[-1]


def _append_dims(x, target_dims):
    return x[(...,) + (None,) * (target_dims - x.ndim)]


def load(folder: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """(sampling, external) modules of k-diffusion, loaded from the wheel in `folder` (fetched if missing)."""
    if f"{PACKAGE}.external" in sys.modules:
        return sys.modules[f"{PACKAGE}.sampling"], sys.modules[f"{PACKAGE}.external"]
    wheel = fetch_wheel(folder)
    package = types.ModuleType(PACKAGE)
    package.__path__ = []
    utils = types.ModuleType(f"{PACKAGE}.utils")
    utils.append_dims = _append_dims
    sys.modules[PACKAGE], sys.modules[f"{PACKAGE}.utils"] = package, utils
    package.utils = utils
    with zipfile.ZipFile(wheel) as archive:
        for name in ("sampling", "external"):
            source = archive.read(f"k_diffusion/{name}.py").decode("utf-8")
            spec = importlib.util.spec_from_loader(f"{PACKAGE}.{name}", loader=None)
            module = importlib.util.module_from_spec(spec)
            module.__package__ = PACKAGE
            sys.modules[spec.name] = module
            exec(compile(source, f"k_diffusion/{name}.py", "exec"), module.__dict__)
            setattr(package, name, module)
    return package.sampling, package.external


def ldm_alphas_cumprod(config) -> "torch.Tensor":
    """The model's cumulative alphas as the original LDM code (and so A1111) computes them: float64, then a
    float32 buffer."""
    import numpy as np
    import torch

    betas = np.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, config["num_train_timesteps"],
                        dtype=np.float64) ** 2
    return torch.tensor(np.cumprod(1 - betas), dtype=torch.float32)


def compvis_denoiser(external, loaded, unet=None):
    """k-diffusion's CompVisDenoiser (A1111's model wrapper) around the loaded model's UNet (or `unet`, a
    callable with the UNet's signature, e.g. one that counts calls)."""
    unet = unet or loaded.components["unet"]

    class CompVisModel:  # what CompVisDenoiser wraps: apply_model(x, t, cond) -> eps
        alphas_cumprod = ldm_alphas_cumprod(loaded.base_scheduler_config)

        def apply_model(self, x, t, cond):
            return unet(x, t, encoder_hidden_states=cond, return_dict=False)[0]

    return external.CompVisDenoiser(CompVisModel(), quantize=False)


def diffusers_prompt_embeds(loaded, prompt: str, negative: str):
    """(cond, uncond) as diffusers' own StableDiffusionPipeline.encode_prompt gives them."""
    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**{k: loaded.components.get(k) for k in
                                      ("vae", "text_encoder", "tokenizer", "unet", "scheduler")},
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    with torch.inference_mode():
        return pipe.encode_prompt(prompt, "cpu", 1, True, negative)
