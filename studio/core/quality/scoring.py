"""A record's validation score in [0, 1] and the plain-words reasons behind it."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from studio.core.config import IngestConfig

_ASCII_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_WHITESPACE = b" \t\n\r\f\v"
_NON_LETTER = re.compile(r"[\W\d_]+")


def letter_ratio(text: str) -> float:
    """Letters among non-space characters (C-speed for ASCII, regex otherwise)."""
    if text.isascii():
        raw = text.encode("ascii")
        nonspace = len(raw.translate(None, _WHITESPACE))
        others = len(raw.translate(None, _ASCII_LETTERS + _WHITESPACE))
        return (nonspace - others) / nonspace if nonspace else 0.0
    compact = "".join(text.split())
    if not compact:
        return 0.0
    letters = len(_NON_LETTER.sub("", compact))
    return letters / len(compact)


PENALTY = {
    "too_short": 0.5,
    "too_long": 0.3,
    "non_text": 0.5,
    "exact_duplicate": 1.0,
    "near_duplicate": 0.5,
    "pii": 0.3,
}


def assess(
    text: str,
    cfg: IngestConfig,
    *,
    pii: Sequence[str] = (),
    exact_duplicate_of: int | None = None,
    near_duplicate_of: int | None = None,
    similarity: float = 0.0,
    ratio: float | None = None,
) -> tuple[float, list[str]]:
    """Validation score in [0, 1] and the human reasons behind it (ratio: letter_ratio if known)."""
    score = 1.0
    reasons: list[str] = []
    n = len(text)
    if n < cfg.min_chars:
        score -= PENALTY["too_short"]
        reasons.append(f"too short ({n} chars < {cfg.min_chars})")
    elif n > cfg.max_chars:
        score -= PENALTY["too_long"]
        reasons.append(f"too long ({n} chars > {cfg.max_chars})")
    ratio = letter_ratio(text) if ratio is None else ratio
    if ratio < 0.5:
        score -= PENALTY["non_text"]
        reasons.append(f"mostly non-text ({ratio:.0%} letters)")
    if exact_duplicate_of is not None:
        score -= PENALTY["exact_duplicate"]
        reasons.append(f"exact duplicate of record #{exact_duplicate_of}")
    elif near_duplicate_of is not None:
        score -= PENALTY["near_duplicate"]
        reasons.append(f"near duplicate of record #{near_duplicate_of} (~{similarity:.0%} similar)")
    if pii:
        score -= PENALTY["pii"]
        reasons.append("PII found: " + ", ".join(pii))
    return round(max(0.0, min(1.0, score)), 3), reasons


def unflagged_ok(lengths: np.ndarray, ratios: np.ndarray, cfg: IngestConfig) -> np.ndarray:
    """Per text (its length, its letter ratio): True where assess() without PII or duplicate flags
    gives (1.0, []), i.e. the length is within bounds and the ratio is not low (keep in step)."""
    return np.asarray((lengths >= cfg.min_chars) & (lengths <= cfg.max_chars) & (ratios >= 0.5))
