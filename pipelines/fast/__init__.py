"""Fast paths chosen for the machine at hand, and per-run speed-ups that keep the picture.

- `machine`: what this processor offers (native bfloat16, core count), read when asked, never at import.
- `paths`: the settings a device gets by default (dtype, channels_last, threads, fused QKV, torch.compile)
  and why; `apply` puts them on a model's components once, when it is loaded.
- `step_cache`: DeepCache-style reuse of the UNet's deep features between steps, one wrapper per run.
- `compiled`: torch.compile of the UNet, once per input shape, announcing each compile before it starts.
"""
