"""Running out of memory during a run: free what the run held, say what to lower, stay usable.

Out of memory is not the caller's mistake the way a bad field is, but the remedy is theirs (a smaller
size, fewer images, or another dtype for the operator), so it travels as an InvalidRequest that names the
field to lower first, and every surface already shows those: a gr.Error in the UI, one line in the CLI.
"""
from __future__ import annotations

import gc

import torch

from pipelines.requests import GenerationRequest, InvalidRequest


class OutOfMemory(InvalidRequest):
    """The run needed more memory than the device had; the memory it held has been freed."""


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    # MPS and some CPU allocators raise a plain RuntimeError; so does a failed CPU allocation
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "failed to allocate" in text)


def out_of_memory(device, request: GenerationRequest, *, loading: bool = False) -> OutOfMemory:
    """The error to raise (no reference to the original: its traceback holds the run's tensors)."""
    if loading:
        return OutOfMemory("model", f"{request.model!r} does not fit in the memory of {device}: start the studio "
                                    "with --dtype float16 (on a GPU), or choose a smaller model")
    size = f"{request.num_images} image(s) of {request.width}x{request.height}"
    first = ("num_images", "lower num_images (the batch), then width and height") if request.num_images > 1 else \
        ("width", "lower width and height")
    extra = ", or drop the adapters" if request.adapters else ""
    return OutOfMemory(first[0], f"{device} ran out of memory making {size}: {first[1]}{extra}. The memory "
                                 "the run held has been freed, so the next request runs")


def free_memory(device) -> None:
    """Give back what a failed run held: Python's cycles first, then the accelerator's cached blocks."""
    gc.collect()
    kind = torch.device(device).type
    if kind == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    elif kind == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
