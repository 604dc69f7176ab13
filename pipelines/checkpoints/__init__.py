"""Checkpoints from elsewhere: original-layout single files (SD 1.x/2.x/XL) in and out, and pickles kept safe.

single_file: detect_family, load_single_file.  export: diffusers -> original layout.  safe_ckpt: .ckpt gate.
"""
