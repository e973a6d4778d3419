"""arc-ttt: test-time training for the ARC Prize, packaged for an offline Kaggle notebook."""

__version__ = "0.1.0"


def run(config, **kwargs):
    """Run the whole job: `config` is a RunConfig or the path of a YAML config. Returns a RunResult."""
    from .config import RunConfig, load_config
    from .pipeline import run as _run

    if not isinstance(config, RunConfig):
        config = load_config(config)
    return _run(config, **kwargs)
