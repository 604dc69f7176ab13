"""Where one UNet step's time goes, by kind of operation, in float32 and in the studio's CPU default.

    python -m bench.unet_ops [--family sd1] [--size 512] [--runs 2]

One step with classifier-free guidance (batch 2) of a random-weight UNet built from assets/configs, profiled
with torch.profiler in float32 (diffusers' CPU default) and in bfloat16 + channels_last (the studio's default
on a CPU with native bfloat16). Prints each kind's seconds in both and the ratio: it shows how far a precision
can speed a step up on this machine. On this repository's 2-core Zen 4 (AVX512-BF16, no AMX) the 64x64
self-attention, a third of a bfloat16 step, ran no faster in bfloat16 than in float32, which caps the step's
speed-up near 2x whatever the convolutions do.
"""
from __future__ import annotations

import argparse

import torch

KINDS = (  # (kind, operator names as the profiler reports them, without "aten::")
    ("attention", ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_attention_math",
                   "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                   "_scaled_dot_product_cudnn_attention", "bmm", "baddbmm", "_softmax")),
    ("convolution", ("mkldnn_convolution", "_slow_conv2d_forward", "_nnpack_spatial_convolution",
                     "cudnn_convolution", "convolution_overrideable")),
    ("linear", ("addmm", "mm", "_mkldnn_linear", "mkldnn_linear")),
    ("layout and dtype copies", ("copy_", "clone", "contiguous")),
)


def kind_of(op_name: str) -> str:
    name = op_name.removeprefix("aten::")
    return next((kind for kind, names in KINDS if name in names), "other")


def step_profile(unet, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor) -> dict[str, float]:
    """Seconds of self time per kind of operation over one call (after a warm-up call)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        unet(sample, timestep, context)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            unet(sample, timestep, context)
    seconds = {kind: 0.0 for kind, _ in KINDS} | {"other": 0.0}
    for event in prof.key_averages():
        seconds[kind_of(event.key)] += event.self_cpu_time_total / 1e6
    return seconds


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", default="sd1", choices=["sd1", "sd2"],
                        help="SDXL's UNet needs its added conditioning, which this profile does not build")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=2, help="unprofiled steps per precision (median)")
    args = parser.parse_args(argv)
    import copy

    from bench.models import _unet
    from bench.speed import median_seconds
    from pipelines.fast.machine import cpu_info

    torch.manual_seed(0)
    base = _unet(args.family).float().eval()
    latent = args.size // 8
    sample = torch.randn(2, 4, latent, latent)
    context = torch.randn(2, 77, base.config.cross_attention_dim)
    timestep = torch.tensor(500)
    fast = copy.deepcopy(base).to(torch.bfloat16).to(memory_format=torch.channels_last)
    sides = {"float32": (base, sample, context),
             "bfloat16 + channels_last": (fast, sample.to(torch.bfloat16).to(memory_format=torch.channels_last),
                                          context.to(torch.bfloat16))}
    report = {}
    for name, (unet, x, ctx) in sides.items():
        report[name] = step_profile(unet, x, timestep, ctx)
        with torch.inference_mode():
            report[name]["step (wall, median)"] = median_seconds(lambda: unet(x, timestep, ctx), args.runs)[0]
    print(f"{args.family} UNet, {args.size}x{args.size}, batch 2, {torch.get_num_threads()} threads; "
          f"{cpu_info().describe()}")
    first, second = list(report)
    print(f"{'kind':26} {first:>10} {second:>26} {'speed-up':>9}")
    for kind in report[first]:
        a, b = report[first][kind], report[second][kind]
        print(f"{kind:26} {a:10.2f} {b:26.2f} {a / b if b else float('nan'):8.2f}x")
    return report


if __name__ == "__main__":
    main()
