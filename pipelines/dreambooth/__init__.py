"""DreamBooth: teach a model a new subject from a few images (LoRA by default, full fine-tune on request).

dataset: instance/class images.  class_images: prior-preservation images from the base model, cached.
train: the accelerate training loop with resumable checkpoints.  sidecar: what a trained model says about itself.
"""
