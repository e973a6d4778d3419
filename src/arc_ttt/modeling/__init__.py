"""The model-backed parts: loading, LoRA, test-time training, decoding, selection and the engine
that ties them together for the run. Imports the core, never the runner or the edges."""
