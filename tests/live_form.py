"""The Text to Image tab's own endpoint (/txt2img_live) takes every widget of its form, in the form's order
(studio/tabs/txt2img.py); tests call it through this one ordered list, so a new widget is one entry here."""
from __future__ import annotations

PROMPT = "a large red circle in the top left on a blue background"
LIVE_FORM = {"prompt": PROMPT, "negative_prompt": "", "model": "shapes", "scheduler": "Euler a", "steps": 20,
             "guidance_scale": 7.0, "width": 128, "height": 128, "seed": 1, "num_images": 1, "loras": [],
             "lora_weight": 1.0, "batch_count": 1, "variation_seed": -1, "variation_strength": 0.0,
             "schedule_type": "Automatic", "clip_skip": 1, "hires_fix": False, "hires_upscaler": "Latent",
             "hires_scale": 2.0, "hires_steps": 0, "hires_denoising": 0.7, "step_cache": 0}


def submit_live(client, **changes):
    """Start a /txt2img_live job with the form's defaults but for `changes`; Stop it with /txt2img_stop."""
    return client.submit(*{**LIVE_FORM, **changes}.values(), api_name="/txt2img_live")
