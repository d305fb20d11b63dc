"""Planning an ingest: files -> checked, split, scanned and signed records, ready for the one
SQLite writer (Datanets). The only thing written here is each chunk's pack blob (its records'
bytes back to back), marked pending for the writer's transaction (see plans_of).

Each file is read once (links refused unless asked for, size capped) and cut into chunks: prose
at a blank line and JSONL at a line break about every CHUNK_BYTES, CSV, PDF and DOCX whole. A
chunk is parsed, split, scanned for secrets and PII, and MinHash-signed on its own, so the
chunks of every file run in a process pool sized to the machine, and the serial path (small
adds, one core) runs the very same chunks in this process: both give the same records, in the
same order, with the same signatures. Memory per chunk is bounded, and so per file. The pool
itself is core.ingest_pool."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from studio.core import quality
from studio.core.cancel import CancelToken, check
from studio.core.config import IngestConfig
from studio.core.errors import InvalidInput, StudioError
from studio.core.ingest import (
    _READERS,
    RawRecord,
    _bad_lines_error,
    _jsonl_rows,
    _prose_records,
    _too_many_records,
    check_path,
    check_size,
    decode_text,
    display_name,
    file_format,
    read_file,
    record_from_canonical,
    render_text,
    split_prose,
)

# CPU seconds spent planning chunks in this process and its workers, summed over every call, and
# each worker process's own CPU seconds (user + sys) when it last reported, by process id
# (bench/ingest.py reads them: the workers are not children whose rusage we collect)
PLANNING_CPU_S = [0.0, 0.0]  # all chunks, and those planned in this process (not by workers)
WORKER_CPU_S: dict[int, float] = {}
CHUNK_BYTES = 1 << 20  # prose and JSONL are cut into chunks of about this size
POOL_MIN_BYTES = 4 << 20  # smaller adds run in this process (starting workers costs more)
_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 bytes that do not start a character

PREVIEW_CHARS = 160  # the first characters of a record, stored beside it for listings


@dataclass(frozen=True)
class Chunk:
    """One piece of one file, with what it needs to number its rows and offsets as the whole
    file would: the byte, line and character counts of the file before it."""

    fmt: str
    name: str  # the file name as shown and stored (control characters escaped)
    data: bytes
    first: bool
    byte_base: int = 0
    line_base: int = 0
    char_base: int = 0
    text_column: str | None = None


def _cuts(data: bytes, sep: bytes) -> list[int]:
    """Chunk ends: just after the first `sep` at or past every CHUNK_BYTES mark."""
    out, pos = [], CHUNK_BYTES
    while pos < len(data):
        at = data.find(sep, pos)
        if at < 0:
            break
        out.append(at + len(sep))
        pos = at + len(sep) + CHUNK_BYTES
    return out


def chunks(fmt: str, name: str, data: bytes, text_column: str | None) -> list[Chunk]:
    if fmt not in ("txt", "md", "jsonl") or len(data) <= CHUNK_BYTES:
        return [Chunk(fmt, name, data, True, text_column=text_column)]
    # A blank line ("\n\n") or a line break never falls inside a UTF-8 character or a "\r\n".
    ends = _cuts(data, b"\n\n" if fmt != "jsonl" else b"\n") + [len(data)]
    out, start, lines, chars = [], 0, 0, 0
    for end in ends:
        piece = data[start:end]
        out.append(Chunk(fmt, name, piece, start == 0, start, lines, chars, text_column))
        lines += piece.count(b"\n")
        # characters after decode_text: no continuation bytes, "\r\n" as one, no BOM
        n_chars = len(piece) if piece.isascii() else len(piece.translate(None, _CONTINUATION))
        chars += n_chars - (piece.count(b"\r\n") if b"\r" in piece else 0)
        if start == 0 and piece.startswith(b"\xef\xbb\xbf"):
            chars -= 1
        start = end
    return out


def _decode(c: Chunk) -> str:
    """decode_text() for a chunk: positions in messages are the file's."""
    return decode_text(
        c.name, c.data, byte_base=c.byte_base, line_base=c.line_base, first=c.first, whole=False
    )


def _rows(c: Chunk, cfg: IngestConfig) -> tuple[list[Any], list[tuple[int, str]]]:
    """The chunk's records as reader rows, and its malformed JSON lines."""
    if c.fmt in ("txt", "md"):
        text = _decode(c)
        pieces = split_prose(text, cfg, markdown=c.fmt == "md")
        return _prose_records(c.name, [(o + c.char_base, t) for o, t in pieces]), []
    if c.fmt == "jsonl":
        return _jsonl_rows(c.name, _decode(c), cfg, c.line_base)
    return _READERS[c.fmt](c.name, c.data, cfg, c.text_column), []


# Where a chunk's pack goes: the blob store's folder and the process whose transaction will
# reference it (the writer), or None to only compute its digest.
PackStore = tuple[str, int] | None


def plan_chunk(c: Chunk, cfg: IngestConfig, store: PackStore = None) -> dict[str, Any]:
    """Parse, split, scan and sign one chunk, and write its records' pack into the blob store
    (picklable in and out: it runs in workers)."""
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of small acyclic objects: the cyclic GC would rescan them
    started = time.process_time()
    try:
        out = _plan_chunk(c, cfg)
        if "pack" in out:
            out["pack_id"], out["created"] = _store_pack(out["pack"], store)
            if store is not None:  # the writer reads the few texts it needs from the blob:
                out["pack"] = None  # not sending the pack back halves what a worker pickles
                out["pack_at"] = str(_blob_path(store, out["pack_id"]))
        out["byte_base"], out["bytes"] = c.byte_base, len(c.data)
        out["cpu_s"] = time.process_time() - started
        out["process"] = (os.getpid(), time.process_time())
        return out
    finally:
        if gc_was_on:
            gc.enable()


def _plan_chunk(c: Chunk, cfg: IngestConfig) -> dict[str, Any]:
    raw, bad = _rows(c, cfg)
    if bad:
        return {"bad": bad, "rows": len(raw)}
    texts = [r[1] if r[0] == "text" else render_text(*r[:5]) for r in raw]
    stats = quality.analyze(texts)
    pii, why = quality.scan_many_flat(
        texts, stats.mnemonic.tolist(), stats.digits.tolist(), stats.long_token.tolist()
    )
    # structured rows cannot be split like prose: one over max_chars is refused
    for i, r in enumerate(raw):
        if r[0] != "text" and not why[i] and len(texts[i]) > cfg.max_chars:
            why[i] = (
                f"is {len(texts[i]):,} characters, over ingest.max_chars ({cfg.max_chars:,}):"
                " shorten it or split it over several rows"
            )
    refused = [{"where": _where(row[5]), "reason": w} for row, w in zip(raw, why, strict=True) if w]
    sigs, ratios = stats.sigs, stats.letter_ratio
    if refused:  # keep the others
        kept = [i for i, w in enumerate(why) if not w]
        raw, texts, pii = [raw[i] for i in kept], [texts[i] for i in kept], [pii[i] for i in kept]
        sigs, ratios = sigs[kept], ratios[kept]
    out = _compact(c.name, raw, texts, pii, sigs, ratios, refused)
    # the LSH band keys, which the writer's near-duplicate index would otherwise compute
    index = quality.DuplicateIndex(cfg.near_duplicate_threshold)
    out["bands"], out["banding"] = index.band_key_array(sigs), (index.b, index.r)
    return out


def _compact(
    name: str,
    raw: list[Any],
    texts: list[str],
    pii: list[tuple[str, ...]],
    sigs: np.ndarray,
    ratios: np.ndarray,
    refused: list[dict[str, str]],
) -> dict[str, Any]:
    """A chunk's plan in the few objects the writer needs, cheap to send back from a worker:
    the records' canonical bytes back to back (the pack) with their sizes, and per record only
    flat strings and numpy arrays. The writer never needs the texts themselves, except for the
    few flagged records, which it decodes from the pack (PlannedTexts)."""
    n = len(raw)
    file_json = json.dumps(name, ensure_ascii=False)
    canon = [
        t.encode() if r[0] == "text" else RawRecord(*r[:5]).canonical()
        for t, r in zip(texts, raw, strict=True)
    ]
    return {
        "kinds": [r[0] for r in raw],
        "sources": _sources_json([r[5] for r in raw], file_json),
        "previews": [t[:PREVIEW_CHARS] for t in texts],
        "lengths": np.fromiter(map(len, texts), np.int64, n),
        "pack": b"".join(canon),
        "sizes": np.fromiter(map(len, canon), np.int64, n),
        "hashes": [hashlib.sha256(b).hexdigest() for b in canon],
        "sigs": sigs,
        "ratios": ratios,
        "pii": {i: p for i, p in enumerate(pii) if p},  # (rare)
        "refused": refused,
    }


def _blob_path(store: tuple[str, int], digest: str) -> Path:
    from studio.core.blobs import BlobStore

    return BlobStore(Path(store[0])).path_for(digest)


def _store_pack(pack: bytes, store: PackStore) -> tuple[str, list[str]]:
    """The pack's digest, and [digest] when this call created the blob. Written with a marker
    naming the writer process: if it dies before COMMIT, the next open sweeps the blob; after a
    rollback (a cancel) the writer discards it."""
    if store is None or not pack:
        return hashlib.sha256(pack).hexdigest(), []
    from studio.core.blobs import BlobStore

    digest, created = BlobStore(Path(store[0])).add_pending(pack, owner=store[1])
    return digest, [digest] if created else []


class PlannedTexts(Sequence[str]):
    """The plain texts of a plan's records, decoded from its pack on demand (the writer reads
    only the few it scores or compares)."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self._packs, self._chunk = plan["pack_bytes"], plan["chunk_of"]
        self._kinds, self._offsets, self._sizes = plan["kinds"], plan["offsets"], plan["sizes"]
        self._at = plan["pack_at"]

    def _pack(self, chunk: int) -> bytes:
        pack = self._packs[chunk]
        if pack is None:  # (written to the blob store by the worker that planned it)
            pack = self._packs[chunk] = Path(self._at[chunk]).read_bytes()
        return pack  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self._kinds)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        off = int(self._offsets[i])
        data = self._pack(int(self._chunk[i]))[off : off + int(self._sizes[i])]
        kind = self._kinds[i]
        if kind == "text":
            return data.decode("utf-8")
        return record_from_canonical(kind, data).plain_text()


def _merge(head: dict[str, Any], parts: list[dict[str, Any]], cfg: IngestConfig) -> dict[str, Any]:
    """One file's plan from its chunks' plans (in order)."""
    failed = file_error(head, parts, cfg)
    if failed is not None:
        raise failed
    return combine(head, parts)


def file_error(
    head: dict[str, Any], parts: Sequence[dict[str, Any] | StudioError], cfg: IngestConfig
) -> StudioError | None:
    """Why a file whose chunks were planned as `parts` is refused, or None: the first chunk that
    failed, else its malformed lines, else too many records, else none at all."""
    planned: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, StudioError):
            return p
        planned.append(p)
    name = head["name"]
    bad = [b for p in planned for b in p.get("bad", ())]
    if bad:
        return _bad_lines_error(name, bad)
    n = sum(len(p["kinds"]) + len(p["refused"]) for p in planned if "bad" not in p)
    if n > cfg.max_records_per_file:
        return _too_many_records(name, cfg)
    if not n:
        if head["format"] == "jsonl":
            return InvalidInput(f"{name}: no records found.", hint="Add one JSON object per line.")
        return InvalidInput(f"{name}: the file has no text.", hint="Add a file with content.")
    return None


def combine(head: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The writer's view of consecutive planned chunks of one file (all of them, or one)."""
    plan = dict(head)
    for key in ("kinds", "sources", "previews", "hashes", "refused"):
        plan[key] = [x for p in parts for x in p[key]] if len(parts) > 1 else parts[0][key]
    plan["sigs"] = np.concatenate([p["sigs"] for p in parts]).reshape(-1, quality.NUM_PERM)
    for key in ("ratios", "lengths", "sizes", "bands"):
        plan[key] = np.concatenate([p[key] for p in parts])
    plan["banding"] = parts[0]["banding"]
    # Each chunk's records live in that chunk's pack (written by the worker), at offsets from 0.
    counts = [len(p["kinds"]) for p in parts]
    plan["pack_bytes"] = [p["pack"] for p in parts]
    plan["pack_at"] = [p.get("pack_at") for p in parts]
    plan["chunk_of"] = np.repeat(np.arange(len(parts)), counts)
    plan["packs"] = [p["pack_id"] for p in parts for _ in range(len(p["kinds"]))]
    # the file's pack: its first chunk's (the others are referenced by their records)
    plan["pack"] = next(
        (p["pack_id"] for p in parts if p["kinds"]), hashlib.sha256(b"").hexdigest()
    )
    plan["offsets"] = np.concatenate([np.cumsum(p["sizes"]) - p["sizes"] for p in parts])
    pii: dict[int, tuple[str, ...]] = {}
    base = 0
    for p in parts:
        pii.update({base + i: kinds for i, kinds in p["pii"].items()})
        base += len(p["kinds"])
    plan["pii"] = pii
    plan["byte_base"], plan["bytes"] = parts[0]["byte_base"], sum(p["bytes"] for p in parts)
    return plan


class FileParts:
    """A file being planned: its head (name, path, sha256, size, format) and its chunks' plans
    (or the StudioError of one), in order, each as soon as it is ready, so that the writer
    stores a large file's first chunks while the pool still plans its last ones. The writer
    decides whether the file is refused (file_error) once it has seen every part."""

    def __init__(
        self,
        head: dict[str, Any],
        count: int,
        parts: Iterator[dict[str, Any] | StudioError],
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.head, self.count, self._parts, self._ready = head, count, parts, ready

    def __iter__(self) -> Iterator[dict[str, Any] | StudioError]:
        return self._parts

    def groups(self) -> Iterator[list[dict[str, Any] | StudioError]]:
        """The parts in runs to write together: the next one (waited for), and those after it
        that are ready already. Writing costs less per record in larger runs, so a writer that
        falls behind catches up, and one that keeps up writes each chunk as it comes. (In this
        process, every part is "ready": the whole file is planned, then written, in one run.)"""
        for first in self._parts:
            group = [first]
            while len(group) < self.count and self._ready():
                nxt = next(self._parts, None)
                if nxt is None:
                    break
                group.append(nxt)
            yield group

    def drain(self) -> None:
        """Consume the parts the writer did not ask for (their packs are then noted)."""
        for _ in self._parts:
            pass


@dataclass(frozen=True)
class Checked:
    """A file that passed the cheap checks (a plain file, no link unless asked for, a known type,
    not empty, under the size limit), not read yet."""

    path: Path
    fmt: str
    size: int
    text_column: str | None
    follow_symlinks: bool


def _check(path: Path, text_column: str | None, cfg: IngestConfig, follow: bool) -> Checked:
    check_path(path, follow_symlinks=follow)
    fmt = file_format(path)
    size = check_size(path, cfg)
    return Checked(path, fmt, size, text_column, follow)


def _read(item: Checked, cfg: IngestConfig) -> tuple[dict[str, Any], list[Chunk]]:
    """Read a checked file once (the checks run again on the open file) and cut it into chunks."""
    path = item.path
    data = read_file(path, cfg, follow_symlinks=item.follow_symlinks)
    name = display_name(path.name)
    head = {
        "path": path,
        "name": name,
        "stored_path": display_name(str(Path(path).absolute())),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "format": item.fmt,
    }
    return head, chunks(item.fmt, name, data, item.text_column)


def plan_file(
    path: Path, text_column: str | None, cfg: IngestConfig, *, follow_symlinks: bool = False
) -> dict[str, Any]:
    """Read and plan one file in this process (see plan_files)."""
    head, parts = _read(_check(Path(path), text_column, cfg, follow_symlinks), cfg)
    return _merge(head, [plan_chunk(c, cfg) for c in parts], cfg)


def worker_count(cfg: IngestConfig) -> int:
    """ingest.workers, or one per CPU core this process may run on (0, the default)."""
    if cfg.workers > 0:
        return cfg.workers
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def plan_files(
    paths: Sequence[Path],
    text_column: str | None,
    cfg: IngestConfig,
    *,
    follow_symlinks: bool = False,
    workers: int | None = None,
    cancel: CancelToken | None = None,
) -> list[dict[str, Any] | StudioError]:
    """plan_file() for every path, in order: a plan or the StudioError that refused the file."""
    prepared = prepare_files(
        paths, text_column, cfg, follow_symlinks=follow_symlinks, cancel=cancel
    )
    return [
        fp if isinstance(fp, StudioError) else _finish(fp.head, list(fp), cfg)
        for fp in plans_of(prepared, cfg, workers=workers, cancel=cancel)
    ]


Prepared = Checked | StudioError


def prepare_files(
    paths: Sequence[Path],
    text_column: str | None,
    cfg: IngestConfig,
    *,
    follow_symlinks: bool = False,
    cancel: CancelToken | None = None,
) -> list[Prepared]:
    """Every path checked (exists, plain file, no link, type, size), or the StudioError that
    refused it: the cheap checks, before any file is read."""
    prepared: list[Prepared] = []
    for p in paths:
        check(cancel)
        try:
            prepared.append(_check(Path(p), text_column, cfg, follow_symlinks))
        except StudioError as e:
            prepared.append(e)
    return prepared


def plans_of(
    prepared: Sequence[Prepared],
    cfg: IngestConfig,
    *,
    workers: int | None = None,
    cancel: CancelToken | None = None,
    blobs: Path | None = None,
    written: list[str] | None = None,
) -> Iterator[FileParts | StudioError]:
    """Each prepared file's FileParts (or the error that refused it before any planning), in order,
    its chunks' plans coming as they are done, while the pool works on the next chunks and files
    (so the caller writes one chunk while the next ones are parsed). The caller takes every part
    of a file before the next file. Chunks go to a process pool when there is more than one core
    and enough data; the plans are the same either way. Files are read as the pool needs them,
    and at most about WINDOW_BYTES of chunks are in flight: memory stays bounded however many
    files there are. With `blobs` (the blob store's folder) each chunk's pack is written there
    by whoever planned it, marked pending for this process; `written` gets the digest of every
    blob so created, also of plans never handed out (a cancel, an error), as soon as it is known
    and at the latest when the iterator is closed: the caller discards those no row uses."""
    store = (str(blobs), os.getpid()) if blobs is not None else None
    out = written if written is not None else []
    files = [item for item in prepared if isinstance(item, Checked)]
    total = sum(item.size for item in files)
    n_workers = min(worker_count(cfg) if workers is None else workers, -(-total // CHUNK_BYTES))
    if n_workers > 1 and total >= POOL_MIN_BYTES and not getattr(sys, "frozen", False):
        from studio.core import ingest_pool

        return ingest_pool.pooled(prepared, cfg, n_workers, cancel, store, out)
    return _serial(prepared, cfg, cancel, store, out)


def _serial(
    prepared: Sequence[Prepared],
    cfg: IngestConfig,
    cancel: CancelToken | None,
    store: PackStore,
    written: list[str],
) -> Iterator[FileParts | StudioError]:
    for item in prepared:
        if isinstance(item, StudioError):
            yield item
            continue
        check(cancel)
        try:
            head, parts = _read(item, cfg)
        except StudioError as e:
            yield e
            continue
        fp = FileParts(head, len(parts), _serial_parts(parts, cfg, cancel, store, written))
        yield fp
        fp.drain()


def _serial_parts(
    parts: list[Chunk],
    cfg: IngestConfig,
    cancel: CancelToken | None,
    store: PackStore,
    written: list[str],
) -> Iterator[dict[str, Any] | StudioError]:
    for c in parts:
        check(cancel)
        yield _account(_noted(_attempt(c, cfg, store), written))


WINDOW_BYTES = 64 << 20  # file bytes submitted to the pool and not yet handed to the writer


def _noted(r: dict[str, Any] | StudioError, written: list[str]) -> dict[str, Any] | StudioError:
    if isinstance(r, dict):
        written += r.get("created", ())
    return r


def _account(r: dict[str, Any] | StudioError) -> dict[str, Any] | StudioError:
    """Note a planned chunk's CPU time (bench/ingest.py)."""
    if isinstance(r, dict):
        PLANNING_CPU_S[0] += r["cpu_s"]
        pid, cpu = r["process"]
        if pid == os.getpid():
            PLANNING_CPU_S[1] += r["cpu_s"]
        else:
            WORKER_CPU_S[pid] = max(cpu, WORKER_CPU_S.get(pid, 0.0))
    return r


def _finish(
    head: dict[str, Any], planned: list[dict[str, Any] | StudioError], cfg: IngestConfig
) -> dict[str, Any] | StudioError:
    """A whole file's plan from all its parts (plan_files), or the error that refuses it."""
    try:
        return _merge(head, planned, cfg)  # type: ignore[arg-type]
    except StudioError as e:
        return e


def _attempt(c: Chunk, cfg: IngestConfig, store: PackStore = None) -> dict[str, Any] | StudioError:
    try:
        return plan_chunk(c, cfg, store)
    except StudioError as e:
        return e


_INT_KEYS = frozenset({"row", "offset", "paragraph", "page"})


def _sources_json(sources: list[dict[str, Any]], file_json: str) -> list[str]:
    """_source_json() of each source; in one pass for the usual chunk, where every source is
    {file, one int key} (an offset, a row or a paragraph)."""
    k = next(reversed(sources[0]), None) if sources else None
    if k in _INT_KEYS:
        values = list(map(dict.get, sources, repeat(k)))  # (map: no Python call per source)
        if (
            set(map(len, sources)) == {2}
            and set(map(type, values)) == {int}
            and all(map(dict.__contains__, sources, repeat("file")))
        ):
            head = f'{{"file": {file_json}, "{k}": '
            return [f"{head}{v}}}" for v in values]
    return [_source_json(s, file_json) for s in sources]


def _source_json(source: dict[str, Any], file_json: str) -> str:
    """json.dumps(source, sort_keys=True) for the usual {file, row|offset|page…: int} shape, fast."""
    if len(source) == 2:
        k = next(reversed(source))  # the reader's second key: row, offset or paragraph
        v = source[k]
        if type(v) is int and k in _INT_KEYS and "file" in source:  # all sort after "file"
            return f'{{"file": {file_json}, "{k}": {v}}}'
    parts = []
    for k in sorted(source):
        v = source[k]
        if k == "file":
            parts.append(f'"file": {file_json}')
        elif type(v) is int:
            parts.append(f'"{k}": {v}')
        else:
            return json.dumps(source, sort_keys=True, ensure_ascii=False)
    return "{" + ", ".join(parts) + "}"


def _where(source: dict[str, Any]) -> str:
    for k in ("row", "page", "paragraph", "offset"):
        if k in source:
            return f"{source.get('file', '')} {k} {source[k]}"
    return str(source.get("file", ""))
