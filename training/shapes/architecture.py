"""The `shapes` model's architecture: SD 1.5's geometry (8x VAE, 4 latent channels, CLIP text encoder,
cross-attention UNet, T2I-Adapters) scaled down until a 20-step image takes well under a second on a CPU."""
from __future__ import annotations

VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=128,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[16, 32, 64, 64], layers_per_block=1, norm_num_groups=8,
    mid_block_add_attention=False, scaling_factor=1.0,  # rescaled from data after VAE training
)
UNET = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=[32, 64, 128],
    # Cross-attention at 8x8 (and in the 4x4 mid block), not at 16x16: the prompt sets global attributes,
    # and the 16x16 attention cost 40% of a step on a 2-core CPU (21 -> 13 ms per CFG batch).
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    cross_attention_dim=128, attention_head_dim=8, norm_num_groups=32,
)
TEXT_ENCODER = dict(
    hidden_size=128, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4,
    max_position_embeddings=77, projection_dim=128, hidden_act="quick_gelu",
)
# SDXL's adapter layout, because the UNet has SDXL's block layout (no attention in the first block): diffusers
# adds the first feature after that block's downsampler, so it must already be at 1/16 of the image.
ADAPTER = dict(in_channels=3, channels=UNET["block_out_channels"], num_res_blocks=1, downscale_factor=16,
               adapter_type="full_adapter_xl")
SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    prediction_type="epsilon", steps_offset=1, clip_sample=False, set_alpha_to_one=False,
    timestep_spacing="leading",
)


def build_components(tokenizer, seed: int = 0):
    """Freshly initialised components (random weights) for this architecture."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    text_config = CLIPTextConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                 **TEXT_ENCODER)
    return dict(
        vae=AutoencoderKL(**VAE),
        unet=UNet2DConditionModel(**UNET),
        text_encoder=CLIPTextModel(text_config),
        tokenizer=tokenizer,
        scheduler=PNDMScheduler.from_config({**SCHEDULER, "skip_prk_steps": True}),
    )
