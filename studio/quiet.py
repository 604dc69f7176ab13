"""Keep a successful run's console to what the user asked for (entry points call this; importing does nothing).

Without it, `python -m studio generate` prints on stderr loading progress bars, a transformers notice that
its image processors fall back to PIL because torchvision is absent (expected: the studio never uses
torchvision), and, for a LoRA that trains only the UNet (most do), a diffusers notice that the text encoder
got no LoRA keys ("safe to ignore", it says). That reads like something went wrong. Only those are
silenced: other warnings and every error still show.
"""
from __future__ import annotations

import logging
import warnings

# logger -> fragments of the notices it gives that are expected here
EXPECTED_NOTICES = {
    "transformers.utils.import_utils": ("requires torchvision (not installed); falling back to",),
    "diffusers.loaders.lora_base": ("No LoRA keys associated to",),
    "diffusers.loaders.peft": ("No LoRA keys associated to",),
}
PEFT_SECOND_ADAPTER = "Already found a `peft_config` attribute in the model"  # two LoRAs at once: intended


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def quiet_libraries() -> None:
    """Hide model-loading progress bars and the notices above, for this process."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    for logger, fragments in EXPECTED_NOTICES.items():
        logging.getLogger(logger).addFilter(_DropMessages(*fragments))
    warnings.filterwarnings("ignore", message=PEFT_SECOND_ADAPTER, category=UserWarning)
