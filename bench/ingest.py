"""Ingest throughput: generated prose (.txt) and JSONL, >= 100 MB, through `Datanets.add_files`
(split, PII/secret scan, score, exact + MinHash near-duplicate detection, blobs, SQLite), once on
the serial path (ingest.workers = 1) and once with the process pool (one worker per core), next
to a baseline that only reads and sha256-hashes the same files; also checks that both paths
stored the same records with the same scores. Prints wall-clock and user + sys CPU seconds (this
process, the workers and their fork server) per MB, and the load (`uptime`) before and after,
since timings on a shared machine depend on it. Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/ingest.py [--mb 100] [--file-mb 12] [--workers N]
        [--keep DIR]

(--mb 48 --file-mb 48: one large file, which the writer stores chunk by chunk while the pool
still plans it)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COMMON = (
    "the of and a to in is was it for on that with as by at from his her be this are or an not had "
    "have but which one were all their they there been when who will more no if out so said what up its "
    "about into than them can only other new some could time these two may then do first any my now such "
    "like our over man me even most made after also did many before must through back years where much "
    "your way well down should because each just those people how"
).split()


CONTRIBUTOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def make_sentences(rng: random.Random, n: int) -> list[str]:
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))
        for _ in range(8000)
    ]
    out = []
    for _ in range(n):
        words = [
            rng.choice(COMMON) if rng.random() < 0.45 else rng.choice(vocab)
            for _ in range(rng.randint(8, 24))
        ]
        if rng.random() < 0.2:
            words.insert(rng.randint(0, len(words)), str(rng.randint(2, 2030)))
        out.append(" ".join(words).capitalize() + rng.choice("...!?"))
    return out


def paragraph(rng: random.Random, sentences: list[str]) -> str:
    p = " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 7)))
    r = rng.random()
    if r < 0.01:
        p += f" Write to user{rng.randint(1, 999)}@example.org for details."
    elif r < 0.02:
        p += f" Call +44 20 7946 {rng.randint(1000, 9999)} after six."
    return p


def generate(folder: Path, total_mb: float, seed: int = 7, file_mb: float = 12.0) -> list[Path]:
    rng = random.Random(seed)
    sentences = make_sentences(rng, 40000)
    target = int(total_mb * 1_000_000)
    per_file = int(file_mb * 1_000_000)
    files: list[Path] = []
    written = 0
    i = 0
    recent: list[str] = []
    while written < target:
        kind = "jsonl" if i % 2 else "txt"
        path = folder / f"gen-{i:02d}.{kind}"
        parts: list[str] = []
        size = 0
        while size < min(per_file, target - written):
            para = paragraph(rng, sentences)
            if recent and rng.random() < 0.01:  # a few exact duplicates
                para = rng.choice(recent)
            recent = (recent + [para])[-50:]
            if kind == "txt":
                line = para + "\n\n"
            elif rng.random() < 0.5:
                line = json.dumps({"text": para}) + "\n"
            else:
                line = json.dumps({"prompt": rng.choice(sentences), "response": para}) + "\n"
            parts.append(line)
            size += len(line)
        path.write_text("".join(parts), encoding="utf-8")
        files.append(path)
        written += size
        i += 1
    return files


def _cpu() -> float:
    """User + sys CPU seconds of this process."""
    t = os.times()
    return t.user + t.system


def baseline(files: list[Path]) -> tuple[float, float]:
    t, c = time.perf_counter(), _cpu()
    for f in files:
        hashlib.sha256(f.read_bytes()).hexdigest()
    return time.perf_counter() - t, _cpu() - c


@contextlib.contextmanager
def _writer_phases() -> Iterator[dict[str, Any]]:
    """When the writer wrote each chunk, and how long the records' content index took to build
    again (wrapping AddingFiles._write_part and BulkIndexes.rebuild for one add): what is left
    once the last chunk is written (index, COMMIT, WAL checkpoint) runs in this process alone."""
    from studio.core.datanets import adding

    got: dict[str, Any] = {"writes": [], "rebuild": 0.0}
    write, rebuild = adding.AddingFiles._write_part, adding.BulkIndexes.rebuild

    def timed_write(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return write(*a, **k)
        finally:
            got["writes"].append((t, time.perf_counter()))

    def timed_rebuild(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return rebuild(*a, **k)
        finally:
            got["rebuild"] += time.perf_counter() - t

    adding.AddingFiles._write_part = timed_write  # type: ignore[method-assign]
    adding.BulkIndexes.rebuild = timed_rebuild  # type: ignore[method-assign]
    try:
        yield got
    finally:
        adding.AddingFiles._write_part = write  # type: ignore[method-assign]
        adding.BulkIndexes.rebuild = rebuild  # type: ignore[method-assign]


def studio_ingest(files: list[Path], home: Path, workers: int) -> dict[str, Any]:
    from studio.app import Studio
    from studio.core import ingest_plan, ingest_pool, quality
    from studio.core.address import checksum_address

    quality.analyze(["warm up: load the word list"])
    quality.scan("warm up the secret scan")
    checksum_address(CONTRIBUTOR.lower())  # (its keccak backend loads on first use, ~0.2 s)
    with Studio(home) as s:
        s.config.ingest.workers = workers
        s.datanets.create("bench")
        before = dict(ingest_plan.WORKER_CPU_S)
        stolen = ingest_pool.STOLEN[0]
        planned_here = ingest_plan.PLANNING_CPU_S[1]
        server_before = _fork_server_cpu()
        with _writer_phases() as phases:
            t, c = time.perf_counter(), _cpu()
            results = s.datanets.add_files("bench", files, contributor=CONTRIBUTOR)
            elapsed, cpu = time.perf_counter() - t, _cpu() - c
        # the workers' own user + sys seconds (fresh processes for each call)
        cpu_workers = sum(v - before.get(pid, 0.0) for pid, v in ingest_plan.WORKER_CPU_S.items())
        cpu_workers += _fork_server_cpu() - server_before  # (started by the first pooled add)
        rows = s.store.conn.execute(
            "SELECT content_sha256, pack, pack_offset, score, reasons, pii, source, preview,"
            " minhash FROM records ORDER BY id"
        ).fetchall()
    flags: dict[str, int] = {}
    for r in results:
        for k, v in r.get("flags", {}).items():
            flags[k] = flags.get(k, 0) + v
    return {
        "elapsed": elapsed,
        "cpu": cpu,
        "cpu_workers": cpu_workers,
        "records": sum(r["records"] for r in results),
        "stolen": ingest_pool.STOLEN[0] - stolen,
        "planned_here": ingest_plan.PLANNING_CPU_S[1] - planned_here,
        "flags": flags,
        "first_write": phases["writes"][0][0] - t,
        "last_write": phases["writes"][-1][1] - t,
        "rebuild": phases["rebuild"],
        "digest": hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest(),
    }


def _fork_server_cpu() -> float:
    """User + sys CPU seconds of the pool's fork server so far (it imports and warms the planning
    code once per process; Linux /proc), 0 when there is none."""
    try:
        from multiprocessing import forkserver

        pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        if not pid:
            return 0.0
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (ImportError, AttributeError, OSError, ValueError, IndexError):
        return 0.0


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--workers", type=int, default=0, help="pool size (default: one per core)")
    ap.add_argument("--keep", help="generate into this folder and keep it")
    ap.add_argument(
        "--file-mb", type=float, default=12.0, help="size of each generated file (default 12)"
    )
    args = ap.parse_args()
    load_before = _uptime()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="studio-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        data = tmp / "data"
        if data.exists() and any(data.iterdir()):
            files = sorted(data.iterdir())
        else:
            data.mkdir(parents=True, exist_ok=True)
            files = generate(data, args.mb, file_mb=args.file_mb)
        mb = sum(f.stat().st_size for f in files) / 1e6
        print(
            f"data: {len(files)} files, {mb:.1f} MB (generated in {time.perf_counter() - t:.1f} s)"
        )
        base, base_cpu = baseline(files)
        runs = {}
        for label, workers in (("serial", 1), ("parallel", args.workers)):
            shutil.rmtree(tmp / f"home-{label}", ignore_errors=True)
            runs[label] = studio_ingest(files, tmp / f"home-{label}", workers)
            shutil.rmtree(tmp / f"home-{label}", ignore_errors=True)
        ser, par = runs["serial"], runs["parallel"]
        from studio.core.config import IngestConfig
        from studio.core.ingest_plan import worker_count

        cfg = IngestConfig()
        cfg.workers = args.workers
        n_par = worker_count(cfg)
        print(
            "  flagged:", ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in ser["flags"].items())
        )
        print(f"  before: {load_before}")
        print(f"  after:  {_uptime()}")
        print(f"{'':32}{'wall':>8}  {'MB/s':>7}  {'CPU s (user+sys)':>26}  {'CPU s/MB':>8}")
        print(
            f"{'baseline (read + sha256):':<32}{base:7.2f}s  {mb / base:7.1f}"
            f"  {base_cpu:7.2f} {'':18}  {base_cpu / mb:8.4f}"
        )
        for label, r in runs.items():
            cpu = r["cpu"] + r["cpu_workers"]
            name = "serial ingest:" if label == "serial" else f"parallel ingest ({n_par} workers):"
            print(
                f"{name:<32}{r['elapsed']:7.2f}s  {mb / r['elapsed']:7.1f}"
                f"  {cpu:7.2f} ({r['cpu']:.2f} here + {r['cpu_workers']:.2f} pool)"
                f"  {cpu / mb:8.4f}   {r['records']} records"
            )
        for label, r in runs.items():
            print(
                f"{label}: this process planned {r['planned_here']:.2f} CPU s"
                f" ({r['stolen']} chunks taken from the pool) and wrote"
                f" {r['cpu'] - r['planned_here']:.2f} CPU s (SQLite writer, reading, merging)"
            )
        for label, r in runs.items():
            cores = 1 if label == "serial" else n_par
            print(
                f"{label}: first chunk written at {r['first_write']:.2f} s, last at"
                f" {r['last_write']:.2f} s; after it, this process alone for"
                f" {r['elapsed'] - r['last_write']:.2f} s (content index {r['rebuild']:.2f} s,"
                f" then COMMIT and WAL checkpoint); all CPU over {cores} core(s):"
                f" {(r['cpu'] + r['cpu_workers']) / cores:.2f} s"
            )
        print(f"ratio parallel/serial (wall):   {ser['elapsed'] / par['elapsed']:8.2f}x")
        print(f"ratio serial/baseline (wall):   {base / ser['elapsed']:8.3f}")
        print(f"ratio parallel/baseline (wall): {base / par['elapsed']:8.3f}")
        same = ser["digest"] == par["digest"]
        print(f"same records and scores:        {'yes' if same else 'NO'} ({ser['digest'][:12]})")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
