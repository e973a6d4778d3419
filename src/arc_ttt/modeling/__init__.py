"""The model-backed parts: runtime (device, dtype, threads), loading, export, LoRA, test-time training, decoding,
selection and the engine that ties them together for the run. Imports the core, never the runner or the edges."""
import os

# Nothing under modeling/ ever reaches a model hub. Set here, before any of its modules imports transformers
# (huggingface_hub reads it once, at import); a value set by the user wins.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import logging
import warnings

# Two messages every run printed that a newcomer reads as errors, neither about anything the kit does wrong:
# bitsandbytes on an AVX512-BF16 CPU looks for an optional hub kernel package ("Failed to load CPU
# gemm_4bit_forward"; its own fallback runs), and peft reads transformers' deprecated `is_gradient_checkpointing`.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
