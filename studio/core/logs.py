"""A rotating log file in the data home. Never log secrets: keystores, passwords, keys, mnemonics."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

_configured: set[Path] = set()


def setup_logging(log_dir: Path, level: int = logging.INFO) -> logging.Logger:
    logger = logging.getLogger("studio")
    log_file = (Path(log_dir) / "studio.log").resolve()
    if log_file in _configured:
        return logger
    for h in list(logger.handlers):
        if isinstance(h, logging.handlers.RotatingFileHandler):
            logger.removeHandler(h)
            h.close()
    _configured.clear()
    handler = logging.handlers.RotatingFileHandler(
        log_file, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
    )
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    _configured.add(log_file)
    return logger


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"studio.{name}")
