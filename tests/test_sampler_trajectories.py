"""training/shapes/trajectories.py: the states calibrate_guidance trains on are the very inputs the studio
gives its UNet for the same sampler, prompt and seed."""
import pytest
import torch

from pipelines import GenerationRequest
from training.shapes.trajectories import parse_sampler, sampler_states


def test_a_sampler_job_names_its_steps():
    assert parse_sampler("DPM++ 3M SDE:30") == ("DPM++ 3M SDE", 30)
    with pytest.raises(ValueError, match="SAMPLER:STEPS"):
        parse_sampler("DPM++ 3M SDE")


@pytest.mark.parametrize("sampler, steps", [("DPM++ 3M SDE", 6), ("DPM2 a", 4), ("DDIM", 4)])
def test_the_states_are_what_the_studio_feeds_its_unet(registry, sampler, steps):
    loaded = registry.load("shapes")
    unet = loaded.components["unet"]
    prompt, seed = "a large red circle on a blue background", 11
    seen = []
    hook = unet.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((args[0].chunk(2)[0].clone(), float(args[1].reshape(-1)[0]))),
        with_kwargs=True)
    try:
        registry.generate(GenerationRequest(prompt=prompt, scheduler=sampler, steps=steps, seed=seed))
    finally:
        hook.remove()
    from pipelines.generation import encode_prompts

    embeds = encode_prompts(loaded, GenerationRequest(prompt=prompt, steps=steps)).kwargs
    states, times = sampler_states(unet, embeds["prompt_embeds"], embeds["negative_prompt_embeds"], sampler,
                                   steps, 7.0, seed=seed)
    assert states.shape[:2] == times.shape == (1, len(seen))
    assert len(seen) >= steps
    for k, (state, t) in enumerate(seen):
        assert float(times[0, k]) == pytest.approx(t)
        assert torch.allclose(states[0, k], state[0], atol=1e-5), f"call {k} of {sampler}"
