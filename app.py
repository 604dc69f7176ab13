"""Start Diffusion Studio: `python app.py [--port 7860] [--share] [--auth user:pass] [--model KEY|PATH] ...`.

The same file is the Hugging Face Space entry point (README front matter: `app_file: app.py`); on a Space
the settings come from the environment (STUDIO_MODEL, STUDIO_DEVICE, ...) since there is no command line.
"""
from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Diffusion Studio: a Gradio web studio for Stable Diffusion.")
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on; 0.0.0.0 for every interface (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")),
                        help="port to listen on (default: 7860)")
    parser.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    parser.add_argument("--auth", metavar="USER:PASS", default=env("STUDIO_AUTH"),
                        help="require this user name and password to open the studio; each user's images are "
                             "saved in outputs/users/NAME and only they see them in History")
    parser.add_argument("--shared-gallery", action="store_true",
                        default=env("STUDIO_SHARED_GALLERY", "").lower() in ("1", "true", "yes"),
                        help="with --auth: History shows every user's images to everyone")
    parser.add_argument("--model", default=env("STUDIO_MODEL", "shapes"), metavar="KEY|PATH",
                        help="the model selected at start: a key (see `python -m studio models`) or a path")
    parser.add_argument("--models-dir", default=env("STUDIO_MODELS_DIR", "models"), metavar="DIR",
                        help="folder scanned for extra models and LoRAs (default: ./models)")
    parser.add_argument("--outputs-dir", default=env("STUDIO_OUTPUTS_DIR", "outputs"), metavar="DIR",
                        help="where generated PNGs are saved (default: ./outputs)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: the best available)")
    parser.add_argument("--devices", default=env("STUDIO_DEVICES"), metavar="LIST",
                        help="several devices, e.g. cuda:0,cuda:1: one worker per device, fed from one queue")
    parser.add_argument("--dtype", default=None, help="float32, float16 or bfloat16 (default: per device)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the UNet, once per image size (the first image at each size waits "
                             "for it, minutes on a CPU; the log says when)")
    parser.add_argument("--unet-batch", type=int, default=None, metavar="N",
                        help="at most N images of a request's batch through the UNet at once (default: 4 on "
                             "CUDA, 1 on a CPU, where an image is then bit-for-bit the same alone or in a batch)")
    parser.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="generations running at once on the device (default: 1)")
    parser.add_argument("--queue-size", type=int, default=int(env("STUDIO_QUEUE_SIZE", "64")), metavar="N",
                        help="requests that may wait; more are told the queue is full (default: 64)")
    parser.add_argument("--max-upload-mb", type=float, default=float(env("STUDIO_MAX_UPLOAD_MB", "50")), metavar="MB",
                        help="largest file a user may upload (default: 50)")
    args = parser.parse_args(argv)
    if args.auth is not None and (":" not in args.auth or args.auth.startswith(":")):
        parser.error("--auth: write USER:PASS")
    if args.unet_batch is not None and not 1 <= args.unet_batch <= 64:
        parser.error("--unet-batch: must be from 1 to 64")
    if args.concurrency < 1:
        parser.error("--concurrency: must be at least 1")
    if args.queue_size < 1:
        parser.error("--queue-size: must be at least 1")
    if not 0 < args.max_upload_mb <= 10_000:
        parser.error("--max-upload-mb: must be more than 0 and at most 10000")
    if args.devices is not None:
        args.devices = [name.strip() for name in args.devices.split(",") if name.strip()]
        if not args.devices:
            parser.error("--devices: name at least one device, e.g. cuda:0,cuda:1")
        if args.device is not None:
            parser.error("--devices and --device: give one of them")
    return args


def make_registry(args: argparse.Namespace):
    """One registry, or with --devices a pool of them (pipelines/pool.py) that the UI uses the same way."""
    from pipelines import PipelineRegistry

    # allow_paths: what strangers type in the model and LoRA pickers opens only inside the models folder
    options = dict(models_dir=args.models_dir, outputs_dir=args.outputs_dir, dtype=args.dtype, compile=args.compile,
                   unet_batch=args.unet_batch, allow_paths="models-dir")
    if args.devices:
        from pipelines.pool import DevicePool

        return DevicePool.create(args.devices, per_device=args.concurrency, **options)
    return PipelineRegistry(device=args.device, **options)


def preload(registry, model: str) -> None:
    """Load the start model while the server comes up, so the first request does not wait for it; a
    failure is left for that request to report."""
    import threading

    def load():
        try:
            for worker in getattr(registry, "registries", [registry]):
                worker.load(model)
        except Exception:  # noqa: BLE001  (reported by the first request that needs the model)
            pass
    threading.Thread(target=load, name="studio-preload", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import studio.spaces_gpu  # noqa: F401  (first: on ZeroGPU `spaces` must come before torch is imported)
    from pipelines import InvalidRequest
    from studio.quiet import quiet_libraries
    from studio.ui import build_demo, launch_options

    quiet_libraries()  # the server log shows requests and errors, not loading bars and expected notices

    try:
        registry = make_registry(args)
        workers = getattr(registry, "workers", args.concurrency)  # a pool: every device's share
        demo = build_demo(registry, default_model=args.model, concurrency_limit=workers,
                          max_queue=args.queue_size, shared_gallery=args.shared_gallery)
        if os.environ.get("SPACES_ZERO_GPU"):
            # ZeroGPU runs each @spaces.GPU call in a forked worker: weights loaded here, before the fork,
            # are shared by every call instead of being reloaded by each one.
            registry.load(args.model)
        else:
            preload(registry, args.model)
    except (InvalidRequest, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth,
                **launch_options(registry, max_upload_mb=args.max_upload_mb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
