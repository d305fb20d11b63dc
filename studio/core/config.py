"""Typed settings stored as JSON in the data home. Unknown keys are kept; bad values are refused."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from studio.core import atomic
from studio.core.errors import ConfigError


@dataclass
class IngestConfig:
    max_file_mb: float = 50.0
    min_chars: int = 40  # shorter records are flagged "too short"
    max_chars: int = 4000  # prose is split into windows no longer than this
    target_chars: int = 1200  # split prose near this size, at paragraph/section boundaries
    near_duplicate_threshold: float = 0.85  # MinHash Jaccard
    csv_text_column: str = "text"
    csv_max_field_chars: int = (
        10_000_000  # a longer CSV field is refused (Python's default: 131072)
    )
    max_unpacked_mb: float = 200.0  # a .docx larger than this when unzipped is refused
    max_unpack_ratio: float = 100.0  # ... or unzipping to more than this many times its size
    max_records_per_file: int = 500_000
    workers: int = 0  # processes that parse and scan files; 0: one per CPU core


@dataclass
class Config:
    network: str = "devnet"
    active_account: str | None = None
    unlock_timeout_s: int = 300
    ingest: IngestConfig = field(default_factory=IngestConfig)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Config:
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"Cannot read settings at {path}: {e}.",
                hint="Fix the JSON or delete the file to restore defaults.",
            ) from e
        if not isinstance(raw, dict):
            raise ConfigError(f"Settings at {path} must be a JSON object.")
        cfg = cls()
        known = {f.name for f in fields(cls)}
        for k, v in raw.items():
            if k == "ingest" and isinstance(v, dict):
                ing = IngestConfig()
                for fk, fv in v.items():
                    if hasattr(ing, fk):
                        expected = type(getattr(ing, fk))
                        if expected is float and isinstance(fv, int):
                            fv = float(fv)
                        if not isinstance(fv, expected):
                            raise ConfigError(
                                f"Setting ingest.{fk} must be {expected.__name__}, got {fv!r}."
                            )
                        setattr(ing, fk, fv)
                cfg.ingest = ing
            elif k in known and k != "extra":
                setattr(cfg, k, v)
            else:
                cfg.extra[k] = v
        return cfg

    def save(self, path: Path) -> None:
        d = asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        atomic.write_json(path, d)
