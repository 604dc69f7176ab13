"""One process-wide lock for building torch modules.

accelerate's and peft's `init_empty_weights` (used when diffusers and transformers load a model and when peft
injects LoRA layers) replace `torch.nn.Module.register_parameter` for the whole process while they run and put
back, on leaving, whatever they found on entering. Two threads inside at once put back each other's
replacement. Seen here: after two LoRA runs on two models at the same time, every module the process made
from then on had its weights on the meta device, and every later LoRA run gave a different picture, for good.
So whatever loads a model, an adapter or a depth model, or adds or removes LoRA layers, holds this lock while
it does (a leaf lock: nothing that takes another lock runs under it). Running the models needs no lock.
"""
from __future__ import annotations

import threading

MODULE_BUILDING = threading.RLock()
