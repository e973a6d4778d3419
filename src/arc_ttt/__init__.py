"""arc-ttt: test-time training for the ARC Prize, packaged for an offline Kaggle notebook."""

__version__ = "0.1.0"


def run(config, **kwargs):
    """Run the whole job: `config` is a RunConfig or the path of a YAML config. Returns a RunResult."""
    from .core.config import RunConfig, load_config  # `import arc_ttt` stays light: the notebook imports it
    from .runner.pipeline import run as _run  # before the wheels are installed

    if not isinstance(config, RunConfig):
        config = load_config(config)
    return _run(config, **kwargs)
