"""Content-addressed blob store: blobs/ab/cdef… named by sha256, written once, never rewritten."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from studio.core.atomic import fsync_dir
from studio.core.errors import IntegrityError, NotFound


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path_for(digest).exists()

    def put(self, data: bytes) -> str:
        """Store data; returns its sha256. Writing an existing blob is a no-op."""
        digest = sha256_hex(data)
        dest = self.path_for(digest)
        if dest.exists():
            return digest
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        fsync_dir(dest.parent)
        return digest

    def get(self, digest: str, *, verify: bool = False) -> bytes:
        p = self.path_for(digest)
        try:
            data = p.read_bytes()
        except FileNotFoundError as e:
            raise NotFound(
                f"Blob {digest[:12]}… is missing from {self.root}.",
                hint="Run `studio datanet verify NAME` to list affected records.",
            ) from e
        if verify and sha256_hex(data) != digest:
            raise IntegrityError(f"Blob {digest[:12]}… does not match its hash (modified on disk).")
        return data

    def verify(self, digest: str) -> bool:
        try:
            return sha256_hex(self.path_for(digest).read_bytes()) == digest
        except FileNotFoundError:
            return False
