"""Export a snapshot version to JSONL or Parquet, in a shape the Hugging Face `datasets` library loads."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from studio.core import atomic
from studio.core.errors import InvalidInput

FORMATS = ("jsonl", "parquet")


def _row(rec: Any) -> dict[str, Any]:
    d = asdict(rec)
    d["source"] = json.dumps(
        d["source"], sort_keys=True
    )  # one string column: stable schema across rows
    return d


def _target(out: str | os.PathLike[str], fmt: str, default_name: str) -> Path:
    """A folder (existing, ending in a separator, or without a suffix) gets NAME-vN.FMT inside."""
    raw = os.fspath(out)
    p = Path(raw)
    if p.is_dir() or raw.endswith(("/", os.sep)) or not p.suffix:
        return p / f"{default_name}.{fmt}"
    out = p
    if out.suffix.lower() != f".{fmt}":
        raise InvalidInput(
            f"Output {out.name} does not end in .{fmt}.",
            hint=f"Use a .{fmt} file name, or a folder.",
        )
    return out


def export_records(
    records: Sequence[Any], out: str | os.PathLike[str], fmt: str = "jsonl", *, default_name: str
) -> Path:
    if fmt not in FORMATS:
        raise InvalidInput(f"Unknown export format '{fmt}'.", hint="Use jsonl or parquet.")
    path = _target(out, fmt, default_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [_row(r) for r in records]
    if fmt == "jsonl":
        data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    else:
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema(
            [
                ("record_id", pa.int64()),
                ("index", pa.int64()),
                ("datanet", pa.string()),
                ("version", pa.int64()),
                ("content_sha256", pa.string()),
                ("contributor", pa.string()),
                ("license", pa.string()),
                ("leaf", pa.string()),
                ("kind", pa.string()),
                ("text", pa.string()),
                ("prompt", pa.string()),
                ("response", pa.string()),
                (
                    "messages",
                    pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])),
                ),
                ("source", pa.string()),
            ]
        )
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
        data = buf.getvalue()
    # Exports are meant to be shared, hence world-readable (unlike the data home's own files).
    atomic.write_bytes(path, data, mode=0o644)
    return path
