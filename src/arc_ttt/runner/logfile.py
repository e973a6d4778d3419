"""The log file of a run or a fine-tuning: one format, attached for the job and detached after it."""
from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(message)s"


def attach_log(logger: logging.Logger, path: str, append: bool = False) -> logging.Handler:
    """Send `logger`'s INFO and above to `path` (appended to on a resume)."""
    handler = logging.FileHandler(path, mode="a" if append else "w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def detach_log(logger: logging.Logger, handler: logging.Handler) -> None:
    logger.removeHandler(handler)
    handler.close()
