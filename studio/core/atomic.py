"""Writes that either happen completely or not at all: temp file in the same folder, fsync, rename."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def write_text(path: Path, text: str, mode: int = 0o600) -> None:
    write_bytes(path, text.encode("utf-8"), mode)


def write_json(path: Path, obj: Any, mode: int = 0o600) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n", mode)


@contextmanager
def building_dir(dest: Path) -> Iterator[Path]:
    """A temp folder beside `dest` to build into; when the block ends it is swapped into place
    (replace_dir), and if the block raises (a crash, a cancel, a full disk) it is removed:

        with atomic.building_dir(out) as tmp:
            model.save_pretrained(tmp)
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
    try:
        yield tmp
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(built: Path, dest: Path) -> None:
    """Swap a fully built folder into place. The old folder (if any) stays until the new one is in
    place, so a crash leaves either the old or the new one, never a mix."""
    old = dest.with_name(dest.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        os.replace(dest, old)
    os.replace(built, dest)
    fsync_dir(dest.parent)
    if old.exists():
        shutil.rmtree(old)
