"""arc-ttt: test-time training for the ARC Prize, packaged for an offline Kaggle notebook."""

import os

__version__ = "0.1.0"

# OpenMP threads that wait at a barrier sleep instead of spinning. A spinning thread that shares a core
# with another process made one TTT step 30x slower; libgomp reads this once, when torch is first
# imported, so it is set here, before any of the package's modules imports torch. A value set by the
# user wins. See modeling.runtime.configure_threads for the thread count.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run(config, **kwargs):
    """Run the whole job: `config` is a RunConfig or the path of a YAML config. Returns a RunResult."""
    from .core.config import RunConfig, load_config  # `import arc_ttt` stays light: the notebook imports it
    from .runner.pipeline import run as _run  # before the wheels are installed

    if not isinstance(config, RunConfig):
        config = load_config(config)
    return _run(config, **kwargs)
