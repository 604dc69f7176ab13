"""T2I-Adapter conditioning: which adapters exist per model family, and how images become condition maps."""
from .catalog import ADAPTERS, AdapterSpec, adapter_spec, check_fits, is_available, kinds_for, load_adapter
from .depth import DepthEstimators
from .preprocess import (PREPROCESSORS, PreprocessResult, condition_for_adapter, preprocess_image,
                         preprocessors_for, prepare_condition)

__all__ = ["ADAPTERS", "AdapterSpec", "adapter_spec", "check_fits", "is_available", "kinds_for", "load_adapter",
           "DepthEstimators", "PREPROCESSORS", "PreprocessResult", "condition_for_adapter", "preprocess_image",
           "preprocessors_for", "prepare_condition"]
