"""The kit's user-error type: what a user gave (a path, a flag, a config value, a model folder) cannot be used.

`arc-ttt` prints such an error's message and exits 2; any other exception is a bug and keeps its traceback, so
the kit never catches a bare ValueError to print it. The message says what is wrong and how to fix it. The
kit's older error classes (TaskFileError, ConfigError, TokenizerFormatError, ...) are user errors too: the CLI
lists them beside this one.
"""
from __future__ import annotations


class UserError(ValueError):
    """A value the user gave is wrong (a ValueError still, for callers that catch one)."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the user named is missing (a FileNotFoundError still, for callers that catch one)."""
