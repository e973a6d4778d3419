"""The model-backed parts: runtime (device, dtype, threads), loading, export, LoRA, test-time training, decoding,
selection and the engine that ties them together for the run. Imports the core, never the runner or the edges."""
import os

# Nothing under modeling/ ever reaches a model hub. Set here, before any of its modules imports transformers
# (huggingface_hub reads it once, at import); a value set by the user wins.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
