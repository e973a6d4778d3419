"""arc-ttt: test-time training for the ARC Prize, packaged for an offline Kaggle notebook."""

__version__ = "0.1.0"
