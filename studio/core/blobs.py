"""Content-addressed blob store: blobs/ab/cdef… named by sha256, written once, never rewritten."""

from __future__ import annotations

from pathlib import Path

from studio.core import atomic
from studio.core.errors import IntegrityError, NotFound
from studio.core.hashing import sha256_hex


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
        return self.add(data)[0]

    def add(self, data: bytes) -> tuple[str, bool]:
        """Store data; returns its sha256 and whether this call created the blob (so a cancelled
        call can take back exactly what it wrote)."""
        digest = sha256_hex(data)
        dest = self.path_for(digest)
        if dest.exists():
            return digest, False
        atomic.write_bytes(dest, data)
        return digest, True

    def discard(self, digest: str) -> None:
        """Remove a blob that nothing references (the caller checked)."""
        try:
            self.path_for(digest).unlink()
        except FileNotFoundError:
            pass

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
