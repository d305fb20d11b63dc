"""Content-addressed blob store: blobs/ab/cdef… named by sha256, written once, never rewritten."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
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

    # -- blobs a transaction is about to reference -------------------------------------------
    # A killed process must not leave a blob that nothing points at (it holds the user's text).
    # Such a blob is put with a marker naming it and the writing process, inside the write
    # transaction that references it; settle() drops the marker after COMMIT. sweep_abandoned()
    # (run under the write lock, so no live writer is between its put and its COMMIT) deletes
    # the blobs of markers whose process is gone, unless a committed row uses them.
    @property
    def _pending(self) -> Path:
        return self.root / ".pending"

    def put_pending(self, data: bytes) -> str:
        digest = sha256_hex(data)
        self._pending.mkdir(exist_ok=True)
        (self._pending / f"{os.getpid()}.{digest}").touch()
        return self.put(data, digest)

    def settle(self, digest: str, *, keep: bool = True) -> None:
        """The transaction is over: committed (keep) or rolled back (keep=False deletes the blob;
        pass whether a committed row still uses it)."""
        if not keep:
            self.path_for(digest).unlink(missing_ok=True)
        (self._pending / f"{os.getpid()}.{digest}").unlink(missing_ok=True)

    def has_abandoned(self) -> bool:
        try:
            return any(True for _ in os.scandir(self._pending))
        except FileNotFoundError:
            return False

    def sweep_abandoned(self, in_use: Callable[[str], bool]) -> list[str]:
        """Delete blobs left by processes that died before COMMIT; returns their digests."""
        from studio.core.jobs import pid_alive

        removed = []
        for marker in sorted(self._pending.glob("*.*")):
            pid, _, digest = marker.name.partition(".")
            if pid.isdigit() and pid_alive(int(pid)):
                continue  # still writing
            if not in_use(digest):
                self.path_for(digest).unlink(missing_ok=True)
                removed.append(digest)
            marker.unlink(missing_ok=True)
        return removed

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store data; returns its sha256. Writing an existing blob is a no-op."""
        digest = digest or sha256_hex(data)
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
