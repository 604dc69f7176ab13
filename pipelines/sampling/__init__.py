"""The studio's own sampling: AUTOMATIC1111's samplers on A1111's sigma schedules, and a plain loop for
diffusers schedulers (DDIM, PLMS, UniPC, ...). Plain functions over tensors; no model loading here.

- `noise_table.NoiseTable`: the model's discrete noise levels (sigmas) and the sigma <-> timestep maps.
- `schedules`: A1111's schedule types (Uniform, Karras, Exponential, ...) as functions of (steps, table).
- `k_samplers`: the k-diffusion sampler family, one function per sampler, all of one shape.
- `brownian`: the Brownian-tree noise the SDE samplers draw from, reproducible per seed.
"""
