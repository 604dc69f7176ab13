"""training/shapes/trajectories.py: the states calibrate_guidance trains on are the very inputs the studio's
pipeline gives its UNet for the same sampler, prompt and seed."""
import pytest
import torch

from training.shapes.trajectories import parse_sampler, sampler_states


def test_a_sampler_job_names_its_steps():
    assert parse_sampler("DPM++ 3M SDE:30") == ("DPM++ 3M SDE", 30)
    with pytest.raises(ValueError, match="SAMPLER:STEPS"):
        parse_sampler("DPM++ 3M SDE")


@pytest.mark.parametrize("sampler, steps", [("DPM++ 3M SDE Karras", 6), ("DPM2 a", 4)])
def test_the_states_are_what_the_pipeline_feeds_its_unet(sampler, steps):
    from diffusers import StableDiffusionPipeline

    from pipelines.catalog import SHAPES_DIR
    from pipelines.schedulers import build_scheduler

    pipe = StableDiffusionPipeline.from_pretrained(str(SHAPES_DIR), dtype=torch.float32)
    prompts = ["a large red circle on a blue background", "small green star, top left"]
    seen = []
    hook = pipe.unet.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((args[0].chunk(2)[0].clone(), float(args[1]))), with_kwargs=True)
    pipe.scheduler = build_scheduler(sampler, pipe.scheduler.config, noise_seeds=[11])
    with torch.inference_mode():
        contexts, empty = pipe.encode_prompt(prompts, "cpu", 1, True, [""] * len(prompts))
        pipe(prompt_embeds=contexts, negative_prompt_embeds=empty, num_inference_steps=steps, guidance_scale=7.0,
             height=128, width=128, generator=torch.Generator().manual_seed(11), output_type="latent")
    hook.remove()
    states, times = sampler_states(pipe.unet, contexts, empty[:1], sampler, steps, 7.0, seed=11)
    assert states.shape[:2] == times.shape == (2, len(seen))
    assert len(seen) >= steps
    for k, (state, t) in enumerate(seen):
        assert times[:, k].tolist() == pytest.approx([t, t])
        assert torch.allclose(states[:, k], state, atol=1e-5), f"call {k} of {sampler}"
