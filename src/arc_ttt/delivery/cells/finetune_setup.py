from arc_ttt.core.config import DEFAULT_MODEL_DIR, FinetuneConfig, load_config
from arc_ttt.delivery import environment

config_path = os.path.abspath(environment.resolve_config(CONFIG))
output_dir = OUTPUT_DIR
if on_colab() and DRIVE_DIR and not OUTPUT_DIR:
    from google.colab import drive

    drive.mount("/content/drive")
    output_dir = DRIVE_DIR
overrides = [*([f"model.path={BASE_MODEL}"] if BASE_MODEL else []), *([f"train.steps={STEPS}"] if STEPS else []),
             *([f"output.dir={output_dir}"] if output_dir else []), *OVERRIDES]
cfg = load_config(config_path, overrides, cls=FinetuneConfig)
if not os.path.exists(os.path.join(cfg.model.path, "config.json")):
    if cfg.model.path == DEFAULT_MODEL_DIR:
        from arc_ttt.modeling.embedded import ensure_default_model

        ensure_default_model(cfg.model.path)  # the embedded SmolLM2-135M, converted from its GGUF
    elif on_colab():
        from huggingface_hub import snapshot_download

        snapshot_download(BASE_MODEL_REPO, local_dir=cfg.model.path)
    else:
        raise FileNotFoundError(f"base model folder {cfg.model.path} does not exist (set BASE_MODEL)")
resume = os.path.exists(os.path.join(cfg.output.dir, "checkpoint"))
print("config:", config_path, *overrides, sep="\n  ")
print("output:", cfg.output.dir, "(resuming its checkpoint)" if resume else "(new run)")
