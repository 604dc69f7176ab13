"""PNG Info reads every common studio's files field by field, and "Send to Text to Image" builds a request.

Each image is built here, byte by byte, from the format's documented structure (tests/metadata_support.py),
with the values those studios really write (names, types, quirks such as Fooocus' string seed, TensorArt's
NUL padding and UTF-8 in tEXt, InvokeAI's [negative] syntax, A1111's UTF-16 EXIF comment).
"""
from __future__ import annotations

import gzip
import json

import pytest
from metadata_support import (exif, itxt, jpeg, json_text, png, stealth, text, unicode_comment, ztxt)
from PIL import Image

from pipelines.metadata import read_png_info, read_settings
from pipelines.requests import GenerationRequest
from studio.forms import FORM_FIELDS, build_request
from studio.tabs.png_info import form_values


def sent(fields: dict) -> tuple[GenerationRequest, dict]:
    """What "Send to Text to Image" puts in the form, built into a request as the Generate button does."""
    values, left_out, _ = form_values(fields, (*FORM_FIELDS, "loras", "lora_weight"))
    return build_request(**values), left_out


def check(settings, source: str, expected: dict, unknown_keys=()):
    assert settings.source == source
    assert settings.fields == expected
    for key in unknown_keys:
        assert key in settings.unknown, key
    request, left_out = sent(settings.fields)
    for name, value in expected.items():
        if name in left_out:
            continue
        if name == "loras":
            assert [name for name, _ in request.loras] == [name for name, _ in value]
        else:
            assert getattr(request, name) == value, name
    return request


# ---- AUTOMATIC1111 / Forge / SD.Next -------------------------------------------------------------

A1111_110 = ("masterpiece, a fox in the snow <lora:ink:0.8>\nNegative prompt: blurry, lowres\n"
             "Steps: 28, Sampler: DPM++ 2M SDE, Schedule type: Exponential, CFG scale: 6.5, Seed: 3141592653, "
             "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, "
             "Clip skip: 2, Hires upscale: 2, Hires steps: 12, Hires upscaler: Latent, "
             'Lora hashes: "ink: 3f1a9c0b2d4e", Version: v1.10.1')


def test_a1111_png(tmp_path):
    settings = read_settings(png(tmp_path / "a.png", text("parameters", A1111_110)))
    check(settings, "AUTOMATIC1111", {
        "prompt": "masterpiece, a fox in the snow <lora:ink:0.8>", "negative_prompt": "blurry, lowres",
        "steps": 28, "scheduler": "DPM++ 2M SDE", "schedule_type": "Exponential", "guidance_scale": 6.5,
        "seed": 3141592653, "width": 512, "height": 768, "model": "v1-5-pruned-emaonly", "clip_skip": 2,
        "hires_scale": 2.0, "hires_steps": 12, "hires_upscaler": "Latent", "hires_denoising": 0.45},
        unknown_keys=("Model hash", "Lora hashes", "Version"))
    assert settings.unknown["Lora hashes"] == "ink: 3f1a9c0b2d4e"


def test_a1111_jpeg_exif_user_comment(tmp_path):
    comment = ("a café in Kyōto, 夜\nNegative prompt: text\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, "
               "Seed: 42, Size: 768x512, Model hash: e6e99610c4, Model: dreamshaper_8, Version: v1.6.0")
    settings = read_settings(jpeg(tmp_path / "a.jpg", exif(unicode_comment(comment))))
    check(settings, "AUTOMATIC1111", {
        "prompt": "a café in Kyōto, 夜", "negative_prompt": "text", "steps": 20, "scheduler": "DPM++ 2M",
        "schedule_type": "Karras", "guidance_scale": 7.0, "seed": 42, "width": 768, "height": 512,
        "model": "dreamshaper_8"})


def test_forge_webp_exif_user_comment(tmp_path):
    comment = ("portrait of a knight\nSteps: 25, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1, "
               "Distilled CFG Scale: 3.5, Seed: 7, Size: 896x1152, Model: flux1-dev-fp8, "
               "Version: f2.0.1v1.10.1-previous-313-g8a042934")
    settings = read_settings(jpeg(tmp_path / "f.webp", exif(unicode_comment(comment)), fmt="WEBP"))
    check(settings, "Forge", {
        "prompt": "portrait of a knight", "negative_prompt": "", "steps": 25, "scheduler": "Euler",
        "schedule_type": "SGM Uniform", "guidance_scale": 1.0, "seed": 7, "width": 896, "height": 1152,
        "model": "flux1-dev-fp8"}, unknown_keys=("Distilled CFG Scale",))


@pytest.mark.parametrize("sampler, expected", [
    ("DPM++ 2M", ("DPM++ 2M", "Uniform")),  # before 1.9 a plain name ran evenly spaced sigmas
    ("Euler a", ("Euler a", "Automatic")),  # no default schedule: Automatic is that already
    ("DPM++ SDE Karras", ("DPM++ SDE", "Karras")), ("LMS Karras", ("LMS", "Karras")),
    ("DPM2 a Karras", ("DPM2 a", "Karras")), ("DPM++ 2M SDE Exponential", ("DPM++ 2M SDE", "Exponential")),
])
def test_old_a1111_sampler_names(tmp_path, sampler, expected):
    old = f"a cat\nSteps: 20, Sampler: {sampler}, CFG scale: 7, Seed: 5, Size: 512x512, Model hash: 45dee52b"
    fields = read_png_info(png(tmp_path / "old.png", text("parameters", old)))
    assert (fields["scheduler"], fields["schedule_type"]) == expected


# ---- ComfyUI ------------------------------------------------------------------------------------------

def comfy_graph() -> dict:
    """txt2img with a LoRA, clip skip, a ControlNet on both conditionings, and a latent-upscale second pass."""
    return {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler_ancestral",
            "scheduler": "karras", "denoise": 1, "model": ["10", 0], "positive": ["12", 0],
            "negative": ["12", 1], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "SD1.5\\dreamshaper_8.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640, "batch_size": 2}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["11", 0]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, text", "clip": ["11", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["15", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "ink.safetensors", "strength_model": 0.7,
                                                      "strength_clip": 1.0, "model": ["4", 0], "clip": ["4", 1]}},
        "11": {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -2, "clip": ["10", 1]}},
        "12": {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "strength": 0.6, "start_percent": 0, "end_percent": 1, "positive": ["6", 0], "negative": ["7", 0],
            "control_net": ["13", 0], "image": ["14", 0]}},
        "13": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "control_canny.safetensors"}},
        "14": {"class_type": "LoadImage", "inputs": {"image": "edges.png"}},
        "15": {"class_type": "KSampler", "inputs": {
            "seed": 156680208700286, "steps": 12, "cfg": 8, "sampler_name": "dpmpp_2m", "scheduler": "karras",
            "denoise": 0.5, "model": ["10", 0], "positive": ["12", 0], "negative": ["12", 1],
            "latent_image": ["16", 0]}},
        "16": {"class_type": "LatentUpscaleBy", "inputs": {"upscale_method": "nearest-exact", "scale_by": 1.5,
                                                           "samples": ["3", 0]}},
    }


COMFY_FIELDS = {"prompt": "a lighthouse at dusk", "negative_prompt": "blurry, text", "seed": 156680208700286,
                "steps": 20, "guidance_scale": 8.0, "scheduler": "Euler a", "schedule_type": "Karras",
                "model": "SD1.5\\dreamshaper_8.safetensors", "loras": [("ink.safetensors", 0.7)],
                "clip_skip": 2, "width": 512, "height": 640, "num_images": 2, "hires_scale": 1.5,
                "hires_upscaler": "Latent (nearest-exact)", "hires_steps": 12, "hires_denoising": 0.5}


def test_comfyui_prompt_graph(tmp_path):
    settings = read_settings(png(tmp_path / "c.png", text("prompt", json.dumps(comfy_graph())),
                                 text("workflow", json.dumps({"nodes": [], "links": []})), after_data=False))
    check(settings, "ComfyUI", COMFY_FIELDS, unknown_keys=("ControlNetApplyAdvanced #12", "LoadImage #14",
                                                           "ControlNetLoader #13", "SaveImage #9"))
    assert settings.chunk == "prompt"
    assert settings.unknown["ControlNetApplyAdvanced #12"]["strength"] == 0.6
    assert settings.unknown["LoRA ink.safetensors CLIP strength"] == 1.0


def comfy_workflow(control="randomize") -> dict:
    """The editor's form of ComfyUI's default graph: positional widget values, links as lists."""
    seed_widgets = [8566257] if control is None else [8566257, control]
    def node(id_, kind, inputs, widgets, mode=0):
        return {"id": id_, "type": kind, "mode": mode, "widgets_values": widgets,
                "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs]}
    return {"last_node_id": 10, "last_link_id": 9, "version": 0.4, "links": [
        [1, 4, 0, 3, 0, "MODEL"], [2, 6, 0, 3, 1, "CONDITIONING"], [3, 7, 0, 3, 2, "CONDITIONING"],
        [4, 10, 0, 3, 3, "LATENT"], [5, 4, 1, 6, 0, "CLIP"], [6, 4, 1, 7, 0, "CLIP"], [7, 3, 0, 8, 0, "LATENT"],
        [8, 4, 2, 8, 1, "VAE"], [9, 8, 0, 9, 0, "IMAGE"], [10, 5, 0, 10, 0, "LATENT"]], "nodes": [
        node(3, "KSampler", [("model", "MODEL", 1), ("positive", "CONDITIONING", 2),
                             ("negative", "CONDITIONING", 3), ("latent_image", "LATENT", 4)],
             [*seed_widgets, 30, 6.5, "dpmpp_2m_sde_gpu", "exponential", 1]),
        node(4, "CheckpointLoaderSimple", [], ["sd_xl_base_1.0.safetensors"]),
        node(5, "EmptyLatentImage", [], [1024, 1024, 1]),
        node(6, "CLIPTextEncode", [("clip", "CLIP", 5)], ["a red fox, autumn forest"]),
        node(7, "CLIPTextEncode", [("clip", "CLIP", 6)], ["lowres"]),
        node(8, "VAEDecode", [("samples", "LATENT", 7), ("vae", "VAE", 8)], []),
        node(9, "SaveImage", [("images", "IMAGE", 9)], ["ComfyUI"]),
        node(10, "Reroute", [("", "*", 10)], []),
        node(11, "Note", [], ["remember to upscale"]),
    ]}


@pytest.mark.parametrize("control", ["randomize", True, None])  # the seed's control widget, as editors stored it
def test_comfyui_workflow_is_the_fallback(tmp_path, control):
    settings = read_settings(png(tmp_path / "w.png", text("prompt", "{not json"),
                                 text("workflow", json.dumps(comfy_workflow(control)))))
    check(settings, "ComfyUI", {
        "prompt": "a red fox, autumn forest", "negative_prompt": "lowres", "seed": 8566257, "steps": 30,
        "guidance_scale": 6.5, "scheduler": "DPM++ 2M SDE", "schedule_type": "Exponential",
        "model": "sd_xl_base_1.0.safetensors", "width": 1024, "height": 1024, "num_images": 1})
    assert settings.chunk == "workflow"
    assert any("'prompt' chunk is not valid JSON" in note for note in settings.notes)


def test_comfyui_sampler_custom_advanced(tmp_path):
    graph = {
        "13": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["25", 0], "guider": ["22", 0], "sampler": ["16", 0], "sigmas": ["17", 0],
            "latent_image": ["27", 0]}},
        "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 219670278747233}},
        "22": {"class_type": "BasicGuider", "inputs": {"model": ["12", 0], "conditioning": ["26", 0]}},
        "26": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5, "conditioning": ["6", 0]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat holding a sign", "clip": ["11", 0]}},
        "16": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "17": {"class_type": "BasicScheduler", "inputs": {"scheduler": "simple", "steps": 20, "denoise": 1,
                                                          "model": ["12", 0]}},
        "12": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors",
                                                      "weight_dtype": "default"}},
        "11": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "t5xxl_fp16.safetensors",
                                                          "clip_name2": "clip_l.safetensors", "type": "flux"}},
        "27": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "flux", "images": ["8", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["10", 0]}},
    }
    settings = read_settings(png(tmp_path / "flux.png", text("prompt", json.dumps(graph))))
    check(settings, "ComfyUI", {
        "prompt": "a cat holding a sign", "negative_prompt": "", "seed": 219670278747233, "steps": 20,
        "guidance_scale": 1.0, "scheduler": "Euler", "schedule_type": "Simple", "model": "flux1-dev.safetensors",
        "width": 1024, "height": 768, "num_images": 1}, unknown_keys=("FluxGuidance #26", "DualCLIPLoader #11"))
    assert settings.unknown["FluxGuidance #26"] == {"guidance": 3.5}


# ---- Fooocus ------------------------------------------------------------------------------------------

FOOOCUS = {"adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion",
           "base_model_hash": "aeb7e9e689", "clip_skip": 2, "full_negative_prompt": ["(worst quality:1.4)"],
           "full_prompt": ["cinematic still a smiling goldfish . emotional", "a smiling goldfish, deep focus"],
           "guidance_scale": 4, "loras": [["sd_xl_offset_example-lora_1.0", 0.1, "4852686128"]],
           "metadata_scheme": "fooocus", "negative_prompt": "", "performance": "Speed",
           "prompt": "a smiling goldfish", "prompt_expansion": "a smiling goldfish, deep focus",
           "refiner_model": "None", "refiner_switch": 0.5, "resolution": "(768, 1280)", "sampler": "dpmpp_2m_sde_gpu",
           "scheduler": "karras", "seed": "6952411511246973023", "sharpness": 2, "steps": 30,
           "styles": "['Fooocus V2', 'Fooocus Enhance', 'Fooocus Sharp']", "vae": "Default (model)",
           "version": "Fooocus v2.4.3"}


def test_fooocus_json_scheme(tmp_path):
    settings = read_settings(png(tmp_path / "fooocus.png", text("parameters", json.dumps(FOOOCUS)),
                                 text("fooocus_scheme", "fooocus")))
    check(settings, "Fooocus", {
        "prompt": "a smiling goldfish", "negative_prompt": "", "steps": 30, "seed": 6952411511246973023,
        "guidance_scale": 4.0, "clip_skip": 2, "model": "juggernautXL_v8Rundiffusion", "width": 768,
        "height": 1280, "scheduler": "DPM++ 2M SDE", "schedule_type": "Karras",
        "loras": [("sd_xl_offset_example-lora_1.0", 0.1)]},
        unknown_keys=("styles", "performance", "sharpness", "full_prompt", "base_model_hash", "version"))


def test_fooocus_a1111_scheme(tmp_path):
    parameters = ("a smiling goldfish, deep focus\nNegative prompt: (worst quality:1.4)\n"
                  "Steps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 12345, Size: 896x1152, CFG scale: 4, "
                  "Sharpness: 2, Model: juggernautXL_v8Rundiffusion, Model hash: aeb7e9e689, Performance: Speed, "
                  "Scheduler: karras, Lora weights: \"sd_xl_offset_example-lora_1.0: 0.1\", "
                  "Raw prompt: a smiling goldfish, Version: Fooocus v2.5.5")
    settings = read_settings(png(tmp_path / "f.png", text("parameters", parameters),
                                 text("fooocus_scheme", "a1111")))
    check(settings, "Fooocus", {
        "prompt": "a smiling goldfish, deep focus", "negative_prompt": "(worst quality:1.4)", "steps": 30,
        "scheduler": "DPM++ 2M SDE", "schedule_type": "Karras", "seed": 12345, "width": 896, "height": 1152,
        "guidance_scale": 4.0, "model": "juggernautXL_v8Rundiffusion",
        "loras": [("sd_xl_offset_example-lora_1.0", 0.1)]}, unknown_keys=("Sharpness", "Raw prompt"))


# ---- InvokeAI -----------------------------------------------------------------------------------------

def test_invokeai_3_metadata(tmp_path):
    meta = {"generation_mode": "sdxl_txt2img", "positive_prompt": "digital artwork, oil painting",
            "negative_prompt": "grainy, photo", "width": 1024, "height": 1024, "seed": 3293022630,
            "rand_device": "cpu", "cfg_scale": 8.0, "cfg_rescale_multiplier": 0.0, "steps": 35,
            "scheduler": "dpmpp_2m_sde_k", "clip_skip": 1,
            "model": {"key": "8d2f…", "hash": "blake3:8f62…", "name": "juggernautXL", "base": "sdxl",
                      "type": "main"},
            "loras": [{"model": {"key": "a1", "name": "pixel-art-xl", "base": "sdxl"}, "weight": 0.75}],
            "vae": {"model_name": "VAEFix", "base_model": "sdxl"}, "positive_style_prompt": "",
            "app_version": "4.2.4"}
    settings = read_settings(png(tmp_path / "i.png", json_text("invokeai_metadata", meta),
                                 text("invokeai_graph", "{}")))
    check(settings, "InvokeAI", {
        "prompt": "digital artwork, oil painting", "negative_prompt": "grainy, photo", "width": 1024,
        "height": 1024, "seed": 3293022630, "steps": 35, "guidance_scale": 8.0, "scheduler": "DPM++ 2M SDE",
        "schedule_type": "Karras", "model": "juggernautXL", "clip_skip": 2, "loras": [("pixel-art-xl", 0.75)]},
        unknown_keys=("generation_mode", "vae", "rand_device", "model hash", "app_version"))


def test_invokeai_2_sd_metadata_and_dream(tmp_path):
    prompt = "professional photo of a young woman, city background [rendering, glowing eyes, skinny]"
    sd_metadata = {"model": "stable diffusion", "model_weights": "deliberateForInvoke_v08",
                   "model_hash": "56d1442a0feefd64836a19ac8e3527ec71c884fc962e246ddf67b03e42921272",
                   "app_id": "invoke-ai/InvokeAI", "app_version": "2.3.0",
                   "image": {"prompt": [{"prompt": prompt, "weight": 1.0}], "steps": 50, "cfg_scale": 5,
                             "threshold": 0, "perlin": 0, "height": 768, "width": 512, "seed": 2980747362,
                             "seamless": False, "hires_fix": False, "type": "txt2img",
                             "postprocessing": [{"type": "esrgan", "scale": 4, "strength": 0.95}],
                             "sampler": "k_lms", "variations": []}}
    dream = f'"{prompt}" -s 50 -S 2980747362 -W 512 -H 768 -C 5.0 -A k_lms -U 4 0.95'
    expected = {"prompt": "professional photo of a young woman, city background",
                "negative_prompt": "rendering, glowing eyes, skinny", "steps": 50, "guidance_scale": 5.0,
                "seed": 2980747362, "width": 512, "height": 768, "scheduler": "LMS", "schedule_type": "Automatic"}
    both = read_settings(png(tmp_path / "i2.png", text("Dream", dream), text("sd-metadata", json.dumps(sd_metadata))))
    check(both, "InvokeAI", {**expected, "model": "deliberateForInvoke_v08"},
          unknown_keys=("model_hash", "postprocessing", "app_version"))
    only_dream = read_settings(png(tmp_path / "d.png", text("Dream", dream)))
    check(only_dream, "InvokeAI", expected, unknown_keys=("-U",))
    assert only_dream.unknown["-U"] == "4 0.95"


# ---- NovelAI ------------------------------------------------------------------------------------------

NAI_COMMENT = {"prompt": "1girl, cherry blossoms, best quality", "steps": 28, "height": 1216, "width": 832,
               "scale": 5.0, "uncond_scale": 1.0, "cfg_rescale": 0.0, "seed": 1848390273, "n_samples": 1,
               "hide_debug_overlay": False, "noise_schedule": "karras", "legacy_v3_extend": False,
               "sampler": "k_euler_ancestral", "sm": True, "sm_dyn": False, "uc": "lowres, bad anatomy",
               "request_type": "PromptGenerateRequest", "signed_hash": "xyz"}


def novelai_chunks(comment: dict) -> list[bytes]:
    return [text("Title", "AI generated image"), text("Description", comment["prompt"]),
            text("Software", "NovelAI"), text("Source", "Stable Diffusion XL C1E1DE52"),
            text("Generation time", "6.3"), text("Comment", json.dumps(comment))]


NAI_FIELDS = {"prompt": "1girl, cherry blossoms, best quality", "negative_prompt": "lowres, bad anatomy",
              "steps": 28, "guidance_scale": 5.0, "seed": 1848390273, "width": 832, "height": 1216,
              "num_images": 1, "scheduler": "Euler a", "schedule_type": "Karras", "model": "Stable Diffusion XL"}


def test_novelai_png(tmp_path):
    settings = read_settings(png(tmp_path / "nai.png", *novelai_chunks(NAI_COMMENT)))
    check(settings, "NovelAI", NAI_FIELDS, unknown_keys=("sm", "cfg_rescale", "Model hash", "Software"))
    assert settings.unknown["Model hash"] == "C1E1DE52"


def test_novelai_v4_prompt_structure(tmp_path):
    comment = {**NAI_COMMENT, "noise_schedule": "native", "sampler": "k_dpmpp_2m",
               "v4_prompt": {"caption": {"base_caption": "2girls, park", "char_captions": [
                   {"char_caption": "girl, red hair", "centers": [{"x": 0.3, "y": 0.5}]}]},
                   "use_coords": True, "use_order": True},
               "v4_negative_prompt": {"caption": {"base_caption": "lowres", "char_captions": []}}}
    settings = read_settings(png(tmp_path / "nai4.png", *novelai_chunks(comment)))
    assert settings.fields["prompt"] == "2girls, park" and settings.fields["negative_prompt"] == "lowres"
    assert (settings.fields["scheduler"], settings.fields["schedule_type"]) == ("DPM++ 2M", "Uniform")
    assert settings.unknown["character prompts"] == ["girl, red hair"]


def test_novelai_hidden_in_the_pixels(tmp_path):
    payload = {"Title": "AI generated image", "Description": NAI_COMMENT["prompt"], "Software": "NovelAI",
               "Source": "Stable Diffusion XL C1E1DE52", "Comment": json.dumps(NAI_COMMENT)}
    image = stealth(Image.new("RGBA", (64, 64), (200, 100, 50, 255)),
                    gzip.compress(json.dumps(payload).encode()), b"stealth_pngcomp")
    path = tmp_path / "stealth.png"
    image.save(path)  # no text chunks at all
    settings = read_settings(path)
    check(settings, "NovelAI", NAI_FIELDS)
    assert settings.chunk.startswith("hidden in the pixels")


def test_a1111_parameters_hidden_in_the_pixels(tmp_path):
    hidden = "a hidden fox\nSteps: 12, Sampler: Euler a, CFG scale: 5, Seed: 9, Size: 64x64"
    path = tmp_path / "hidden.png"
    stealth(Image.new("RGBA", (64, 64), "white"), hidden.encode(), b"stealth_pnginfo").save(path)
    assert read_png_info(path) == {"prompt": "a hidden fox", "negative_prompt": "", "steps": 12,
                                   "scheduler": "Euler a", "schedule_type": "Automatic", "guidance_scale": 5.0,
                                   "seed": 9, "width": 64, "height": 64}


# ---- SwarmUI, TensorArt, Stability Matrix ----------------------------------------------------------------

SWARM = {"sui_image_params": {
    "prompt": "a photo of a cat", "negativeprompt": "blurry", "model": "OfficialStableDiffusion/sd_xl_base_1.0",
    "seed": 1571395826, "steps": 30, "cfgscale": 7.0, "aspectratio": "1:1", "width": 1024, "height": 1024,
    "sampler": "euler_ancestral", "scheduler": "karras", "loras": ["pixel-art-xl"], "loraweights": ["0.8"],
    "clipstopatlayer": -2, "automaticvae": True, "swarm_version": "0.9.2.1", "date": "2024-09-01",
    "generation_time": "0.01 (prep) and 6.41 (gen) seconds"},
    "sui_models": [{"name": "sd_xl_base_1.0.safetensors", "param": "model", "hash": "0x31e35c80fc"}]}
SWARM_FIELDS = {"prompt": "a photo of a cat", "negative_prompt": "blurry",
                "model": "OfficialStableDiffusion/sd_xl_base_1.0", "seed": 1571395826, "steps": 30,
                "guidance_scale": 7.0, "width": 1024, "height": 1024, "scheduler": "Euler a",
                "schedule_type": "Karras", "clip_skip": 2, "loras": [("pixel-art-xl", 0.8)]}


def test_swarmui_png(tmp_path):
    settings = read_settings(png(tmp_path / "swarm.png", itxt("parameters", json.dumps(SWARM))))
    check(settings, "SwarmUI", SWARM_FIELDS, unknown_keys=("swarm_version", "aspectratio", "sui_models"))


def test_swarmui_jpeg(tmp_path):
    settings = read_settings(jpeg(tmp_path / "swarm.jpg", exif(unicode_comment(json.dumps(SWARM)))))
    check(settings, "SwarmUI", SWARM_FIELDS)


def test_tensorart_generation_data_and_graph(tmp_path):
    data = {"prompt": "女の子, watercolor, cherry blossoms", "negativePrompt": "lowres", "width": 768,
            "height": 1152, "seed": "2307470548", "steps": 25, "cfgScale": 7, "clipSkip": 2,
            "baseModel": {"modelFileName": "EMS-83211-EMS.safetensors", "hash": "7A5D1B3C", "modelId": "6089"},
            "models": [{"modelFileName": "EMS-1021-EMS.safetensors", "type": "LORA", "weight": 0.6}]}
    graph = {
        "1": {"class_type": "ECHOCheckpointLoaderSimple", "inputs": {"ckpt_name": "EMS-83211-EMS.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": data["prompt"], "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "lowres", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 768, "height": 1152, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "seed": 2307470548, "steps": 25, "cfg": 7, "sampler_name": "dpmpp_2m", "scheduler": "karras",
            "denoise": 1, "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]}},
    }
    # TensorArt writes UTF-8 into tEXt and pads the JSON with NUL bytes.
    settings = read_settings(png(tmp_path / "ta.png", text("generation_data", json.dumps(data, ensure_ascii=False)
                                                            + "\0\0", encoding="utf-8"),
                                 text("prompt", json.dumps(graph, ensure_ascii=False), encoding="utf-8")))
    check(settings, "TensorArt", {
        "prompt": "女の子, watercolor, cherry blossoms", "negative_prompt": "lowres", "width": 768, "height": 1152,
        "seed": 2307470548, "steps": 25, "guidance_scale": 7.0, "clip_skip": 2,
        "model": "EMS-83211-EMS.safetensors", "scheduler": "DPM++ 2M", "schedule_type": "Karras",
        "num_images": 1}, unknown_keys=("models", "baseModel hash"))


def test_stability_matrix(tmp_path):
    parameters_json = {"PositivePrompt": "(cat:1.2), by artist, detailed", "NegativePrompt": "blurry",
                       "Steps": 30, "Sampler": "Euler Ancestral Karras", "CfgScale": 7.0, "Seed": 124825529,
                       "Height": 896, "Width": 640, "ModelHash": "b899d188a1", "ModelName": "ExampleMix7",
                       "FrameCount": 0, "MotionBucketId": 0, "VideoQuality": 0, "Lossless": False, "Fps": 0,
                       "OutputFps": 0.0, "MinCfg": 0.0, "AugmentationLevel": 0.0, "VideoOutputMethod": None}
    parameters = ("(cat:1.2), by artist, detailed\nNegative prompt: blurry\nSteps: 30, Sampler: Euler Ancestral "
                  "Karras, CFG scale: 7, Seed: 124825529, Size: 640x896, Model hash: b899d188a1, Model: ExampleMix7")
    settings = read_settings(png(tmp_path / "sm.png", text("parameters", parameters),
                                 json_text("parameters-json", parameters_json),
                                 ztxt("smproj", json.dumps({"Version": 2, "ProjectType": "TextToImage"}))))
    check(settings, "Stability Matrix", {
        "prompt": "(cat:1.2), by artist, detailed", "negative_prompt": "blurry", "steps": 30,
        "guidance_scale": 7.0, "seed": 124825529, "width": 640, "height": 896, "model": "ExampleMix7",
        "scheduler": "Euler a", "schedule_type": "Karras"}, unknown_keys=("ModelHash",))
    assert "FrameCount" not in settings.unknown  # zero video settings of an image are not news


# ---- ours -----------------------------------------------------------------------------------------------

def test_our_old_request_json_names_the_schedule_in_the_sampler(tmp_path):
    old = {"prompt": "p", "negative_prompt": "", "model": "shapes", "scheduler": "DPM++ 2M Karras", "steps": 20,
           "guidance_scale": 7.0, "width": 128, "height": 128, "seed": 3, "num_images": 1, "adapters": [],
           "adapter_conditioning_factor": 1.0, "loras": [["style", 0.5]]}
    settings = read_settings(png(tmp_path / "ours.png", text("studio_request", json.dumps(old))))
    assert settings.source == "Diffusion Studio"
    assert settings.fields == {**{k: v for k, v in old.items() if k not in ("adapters", "loras")},
                               "scheduler": "DPM++ 2M", "schedule_type": "Karras", "loras": [("style", 0.5)]}
    assert GenerationRequest(**settings.fields).loras == (("style", 0.5),)


def test_easy_diffusion_png_chunks_and_jpeg_json(tmp_path):
    keys = {"prompt": "a castle on a hill", "negative_prompt": "fog", "seed": "30114", "width": "512",
            "height": "768", "num_inference_steps": "25", "guidance_scale": "7.5", "clip_skip": "True",
            "use_stable_diffusion_model": "sd-v1-5", "sampler_name": "dpmpp_2m", "use_vae_model": "vae-ft-mse",
            "use_upscale": "RealESRGAN_x4plus"}
    expected = {"prompt": "a castle on a hill", "negative_prompt": "fog", "seed": 30114, "width": 512,
                "height": 768, "steps": 25, "guidance_scale": 7.5, "clip_skip": 2, "model": "sd-v1-5",
                "scheduler": "DPM++ 2M", "schedule_type": "Uniform"}
    settings = read_settings(png(tmp_path / "ed.png", *(text(k, v) for k, v in keys.items())))
    check(settings, "Easy Diffusion", expected, unknown_keys=("use_vae_model", "use_upscale"))
    as_json = {**keys, "seed": 30114, "clip_skip": True}
    settings = read_settings(jpeg(tmp_path / "ed.jpg", exif(unicode_comment(json.dumps(as_json)))))
    check(settings, "Easy Diffusion", expected)


def test_comfyui_webp_exif_prompt(tmp_path):
    block = exif(Make="workflow:" + json.dumps(comfy_workflow()), Model="prompt:" + json.dumps(comfy_graph()))
    settings = read_settings(jpeg(tmp_path / "c.webp", block, fmt="WEBP"))
    check(settings, "ComfyUI", COMFY_FIELDS)


def test_fooocus_legacy_comment_json(tmp_path):
    comment = {"prompt": "a lighthouse", "negative_prompt": "", "base_model": "sd_xl_base_1.0.safetensors",
               "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": 123, "cfg": 7.0, "steps": 30,
               "width": 1152, "height": 896, "styles": "['Fooocus V2']", "sharpness": 2.0}
    settings = read_settings(png(tmp_path / "old.png", text("Comment", json.dumps(comment))))
    check(settings, "Fooocus", {
        "prompt": "a lighthouse", "negative_prompt": "", "model": "sd_xl_base_1.0.safetensors", "seed": 123,
        "guidance_scale": 7.0, "steps": 30, "width": 1152, "height": 896, "scheduler": "DPM++ 2M SDE",
        "schedule_type": "Karras"}, unknown_keys=("styles", "sharpness"))


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_fooocus_jpeg_and_webp(tmp_path, fmt):
    """Fooocus writes with PIL's Exif: UserComment, Software and MakerNote (the scheme) all in IFD0."""
    block = Image.Exif()
    block[0x9286], block[0x0131], block[0x927C] = json.dumps(FOOOCUS), "Fooocus v2.4.3", "fooocus"
    Image.new("RGB", (8, 8)).save(tmp_path / "f.img", format=fmt, exif=block)
    settings = read_settings(tmp_path / "f.img")
    assert settings.source == "Fooocus" and settings.fields["prompt"] == "a smiling goldfish"
    assert (settings.fields["scheduler"], settings.fields["schedule_type"]) == ("DPM++ 2M SDE", "Karras")
    block[0x9286] = ("a fox\nNegative prompt: x\nSteps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 1, Size: 896x1152, "
                     "CFG scale: 4, Scheduler: karras, Version: Fooocus v2.5.5")
    block[0x927C] = "a1111"
    Image.new("RGB", (8, 8)).save(tmp_path / "f.img", format=fmt, exif=block)
    settings = read_settings(tmp_path / "f.img")
    assert settings.source == "Fooocus" and settings.fields["width"] == 896


def test_comfyui_sdxl_text_encoder_keeps_its_other_settings(tmp_path):
    graph = {"3": {"class_type": "KSampler", "inputs": {
        "seed": 1, "steps": 20, "cfg": 7, "sampler_name": "euler", "scheduler": "normal", "denoise": 1,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncodeSDXL", "inputs": {
            "width": 4096, "height": 4096, "crop_w": 0, "crop_h": 0, "target_width": 1024, "target_height": 1024,
            "text_g": "a castle", "text_l": "castle, stone", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}}}
    settings = read_settings(png(tmp_path / "x.png", text("prompt", json.dumps(graph))))
    assert settings.fields["prompt"] == "a castle" and settings.fields["negative_prompt"] == ""
    assert settings.unknown["text_l"] == "castle, stone"
    assert settings.unknown["CLIPTextEncodeSDXL #6"]["width"] == 4096


def test_comfyui_early_img2img(tmp_path):
    """Early-2023 ComfyUI: k-diffusion function names ("sample_dpmpp_2m"), CheckpointLoader with a config,
    an image encoded as the first latent (img2img: the size is the image's, the denoise is the strength)."""
    graph = {"3": {"class_type": "KSampler", "inputs": {
        "seed": 280823642470253, "random_seed_after_every_gen": True, "steps": 20, "cfg": 8.0,
        "sampler_name": "sample_dpmpp_2m", "scheduler": "normal", "denoise": 0.87, "model": ["4", 0],
        "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["11", 0]}},
        "4": {"class_type": "CheckpointLoader", "inputs": {"config_name": "v1-inference.yaml",
                                                           "ckpt_name": "v1-5-pruned-emaonly.ckpt"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "victorian woman with wings", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "watermark, text", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
        "10": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "11": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}}
    settings = read_settings(png(tmp_path / "i2i.png", text("prompt", json.dumps(graph)),
                                 image=Image.new("RGB", (48, 40))))
    check(settings, "ComfyUI", {
        "prompt": "victorian woman with wings", "negative_prompt": "watermark, text", "seed": 280823642470253,
        "steps": 20, "guidance_scale": 8.0, "scheduler": "DPM++ 2M", "schedule_type": "Normal",
        "model": "v1-5-pruned-emaonly.ckpt", "denoising_strength": 0.87, "width": 48, "height": 40},
        unknown_keys=("CheckpointLoader config_name", "LoadImage #10", "SaveImage #9"))
    assert settings.unknown["KSampler #3"] == {"random_seed_after_every_gen": True}
    assert any("size is the image's own" in note for note in settings.notes)


def test_novelai_2022_comment_without_prompt_or_size(tmp_path):
    comment = {"steps": 50, "sampler": "k_euler_ancestral", "seed": 2253955223, "strength": 0.4, "noise": 0.0,
               "scale": 10.0, "uc": "lowres, bad anatomy"}
    chunks = [text("Title", "AI generated image"), text("Description", "masterpiece, best quality,  cat, space"),
              text("Software", "NovelAI"), text("Source", "Stable Diffusion 1D44365E"),
              text("Comment", json.dumps(comment))]
    settings = read_settings(png(tmp_path / "nai.png", *chunks, image=Image.new("RGB", (64, 96))))
    check(settings, "NovelAI", {
        "prompt": "masterpiece, best quality,  cat, space", "negative_prompt": "lowres, bad anatomy", "steps": 50,
        "guidance_scale": 10.0, "seed": 2253955223, "width": 64, "height": 96, "scheduler": "Euler a",
        "schedule_type": "Automatic", "model": "Stable Diffusion"}, unknown_keys=("strength", "noise"))
    assert settings.unknown["Model hash"] == "1D44365E"
