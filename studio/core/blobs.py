"""Content-addressed blob store: blobs/ab/cdef… named by sha256, written once, never rewritten."""

from __future__ import annotations

import os
from collections.abc import Callable
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

    # -- blobs a transaction is about to reference -------------------------------------------
    # A killed process must not leave a blob that nothing points at (it holds the user's text).
    # Such a blob is added with a marker naming it and the writing process, inside the write
    # transaction that references it; settle() drops the marker once that transaction is over.
    # sweep_abandoned() (run under the write lock, so no live writer is between its add and its
    # COMMIT) deletes the blobs of markers whose process is gone, unless a committed row uses them.
    @property
    def _pending(self) -> Path:
        return self.root / ".pending"

    def add_pending(self, data: bytes, owner: int | None = None) -> tuple[str, bool]:
        """add() with a marker; owner: the process whose transaction will reference the blob, when
        another process writes it for that one (an ingest worker for the writer)."""
        digest = sha256_hex(data)
        self._pending.mkdir(exist_ok=True)
        (self._pending / f"{owner or os.getpid()}.{digest}").touch()
        return self.add(data)

    def settle(self, digest: str) -> None:
        (self._pending / f"{os.getpid()}.{digest}").unlink(missing_ok=True)

    def settle_mine(self) -> None:
        """Drop every marker this process holds (its write transaction is over)."""
        for marker in self._pending.glob(f"{os.getpid()}.*"):
            marker.unlink(missing_ok=True)

    def pending_mine(self) -> list[str]:
        """The digests of every blob marked pending for this process: also those a worker wrote
        for it and died before reporting (the caller discards the ones no row uses)."""
        return sorted(m.name.partition(".")[2] for m in self._pending.glob(f"{os.getpid()}.*"))

    def discard_partial(self, digest: str) -> None:
        """Remove what a writer killed mid-write of this blob left: its temporary file (see
        atomic.write_bytes). Only for a pending blob whose writer is known to be gone."""
        dest = self.path_for(digest)
        for tmp in dest.parent.glob(f".{dest.name}.*.tmp"):
            tmp.unlink(missing_ok=True)

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
                self.discard(digest)
                self.discard_partial(digest)
                removed.append(digest)
            marker.unlink(missing_ok=True)
        return removed

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
