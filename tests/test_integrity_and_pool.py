"""Integrity byte for byte (verify re-hashes every blob; doctor --store checks the whole store)
and the process-pool ingest, which must store exactly what the serial path stores."""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path
from typing import Any

import pytest

from studio.core import ingest_plan, ingest_pool

A1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
WORDS = (
    "tide bell keeper lamp stair wick log rock fog cutter gallery lens clock spring harbour "
    "pilot rope anchor gull salt wind storm ledger supper lantern beacon"
).split()


def _prose(rng: random.Random, paragraphs: int) -> str:
    out = []
    for _ in range(paragraphs):
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."
            for _ in range(rng.randint(2, 6))
        ]
        out.append(" ".join(sentences))
    return "\n\n".join(out) + "\n"


def test_verify_catches_bytes_appended_to_a_pack(cli: Any, studio: Any, tmp_path: Path) -> None:
    f = tmp_path / "log.txt"
    f.write_text(_prose(random.Random(1), 12))
    dn = studio.datanets
    dn.create("packs")
    (res,) = dn.add_files("packs", [f], contributor=A1)
    assert dn.verify("packs")["ok"]
    (fileinfo,) = studio.store.query("SELECT pack FROM datanet_files")
    blob = studio.blobs.path_for(fileinfo["pack"])
    with open(blob, "ab") as fh:  # every record's slice is untouched
        fh.write(b"smuggled bytes")
    out = dn.verify("packs")
    assert not out["ok"]
    ids = {r["id"] for r in dn.records("packs")}
    assert {p["record_id"] for p in out["problems"]} == ids
    assert all("content address" in p["problem"] for p in out["problems"])
    rc, stdout, err = cli("datanet", "verify", "packs")
    assert rc == 1 and "no longer matches its content address" in stdout
    # doctor points at the full check, and runs it when asked
    rc, stdout, err = cli("doctor")
    assert "doctor --store" in stdout
    rc, stdout, err = cli("doctor", "--store")
    assert rc == 1 and "store" in stdout and "problem" in stdout
    blob.write_bytes(blob.read_bytes()[: -len(b"smuggled bytes")])
    assert dn.verify_store()["ok"]


def test_doctor_store_finds_a_damaged_orphan_blob(studio: Any) -> None:
    digest = studio.blobs.put(b"an orphan pack from an interrupted add")
    assert studio.datanets.verify_store()["ok"]
    studio.blobs.path_for(digest).write_bytes(b"changed")
    res = studio.datanets.verify_store()
    assert not res["ok"] and res["problems"] == [
        {"blob": digest, "problem": "does not match its content address"}
    ]


def _snapshot_of(studio: Any, name: str) -> list[tuple[Any, ...]]:
    rows = studio.store.conn.execute(
        "SELECT id, kind, content_sha256, pack, pack_offset, size, score, reasons, pii, source,"
        " preview, minhash, status FROM records ORDER BY id"
    ).fetchall()
    return [tuple(r) for r in rows]


def test_the_pool_stores_what_the_serial_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.app import Studio

    rng = random.Random(7)
    data = tmp_path / "data"
    data.mkdir()
    # several chunks per file, duplicates across chunks and files, PII, secrets, JSONL rows
    base = _prose(rng, 800)
    paras = base.split("\n\n")
    (data / "a.txt").write_text(base + "\n\n" + "\n\n".join(paras[:40]) + "\n")
    (data / "b.md").write_text("# Log\n\n" + _prose(rng, 500) + "\nCall +44 20 7946 0958.\n")
    rows = [json.dumps({"text": p}) for p in paras[:800]]
    rows.insert(500, json.dumps({"prompt": "key?", "response": "0x" + "ab12" * 16}))
    (data / "c.jsonl").write_text("\n".join(rows) + "\n")
    (data / "d.csv").write_text("text\n" + "\n".join(f'"{p}"' for p in paras[:200]) + "\n")
    monkeypatch.setattr(ingest_plan, "CHUNK_BYTES", 64 * 1024)
    monkeypatch.setattr(ingest_plan, "POOL_MIN_BYTES", 0)
    files = sorted(data.iterdir())
    seen = {}
    results = {}
    for workers in (1, 2):
        with Studio(tmp_path / f"home{workers}") as s:
            s.config.ingest.workers = workers
            s.datanets.create("pool")
            results[workers] = s.datanets.add_files("pool", files, contributor=A1)
            seen[workers] = _snapshot_of(s, "pool")
            assert s.datanets.verify("pool")["ok"]  # every pack re-hashed, every slice checked
    assert len(ingest_plan.chunks("txt", "a.txt", (data / "a.txt").read_bytes(), None)) > 3
    assert seen[1] == seen[2] and len(seen[1]) > 1000
    assert results[1] == results[2]
    assert results[1][3]["flags"]["exact_duplicate"] == 200  # d.csv repeats rows of c.jsonl
    assert results[1][2]["refused"][0]["where"] == "c.jsonl row 501"


def test_chunk_offsets_and_rows_match_the_whole_file(tmp_path: Path, monkeypatch: Any) -> None:
    """Chunked planning numbers offsets, rows and error positions as the whole file would."""
    from studio.core.config import IngestConfig
    from studio.core.errors import InvalidInput

    cfg = IngestConfig()
    text = "\ufeff" + "Intro line.\r\n\r\nÜber die Gezeiten.\n\n" + _prose(random.Random(3), 400)
    f = tmp_path / "t.txt"
    f.write_bytes(text.encode("utf-8"))
    whole = ingest_plan.plan_file(f, None, cfg)
    monkeypatch.setattr(ingest_plan, "CHUNK_BYTES", 4096)
    chunked = ingest_plan.plan_file(f, None, cfg)
    decoded = text[1:].replace("\r\n", "\n")
    texts = ingest_plan.PlannedTexts(chunked)
    for source, t in zip(chunked["sources"], texts, strict=True):
        off = json.loads(source)["offset"]
        assert decoded[off : off + len(t)] == t
    assert len(chunked["kinds"]) >= len(whole["kinds"]) > 10
    # the LSH band keys the writer takes from the plan are its index's own
    from studio.core import quality

    index = quality.DuplicateIndex(cfg.near_duplicate_threshold)
    assert chunked["banding"] == (index.b, index.r)
    assert (chunked["bands"] == index.band_key_array(chunked["sigs"])).all()
    # the whole file's records, in order, whichever way it was cut
    assert "\n\n".join(texts) == "\n\n".join(ingest_plan.PlannedTexts(whole))
    bad = tmp_path / "bad.jsonl"
    lines = [json.dumps({"text": f"row {i} " * 20}) for i in range(400)]
    lines[350] = "{not json"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match="malformed JSON lines: 351 "):
        ingest_plan.plan_file(bad, None, cfg)


def test_a_cancelled_pool_ingest_leaves_store_and_blobs_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled at any of its checks while workers plan chunks, the pool path writes nothing."""
    from cancelkit import cancel_everywhere, folder_picture, store_picture

    from studio.app import Studio

    rng = random.Random(11)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.txt", "b.txt"):
        (data / name).write_text(_prose(rng, 120))
    monkeypatch.setattr(ingest_plan, "CHUNK_BYTES", 8 * 1024)
    monkeypatch.setattr(ingest_plan, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest_plan, "WINDOW_BYTES", 16 * 1024)  # files read as the pool goes
    files = sorted(data.iterdir())
    with Studio(tmp_path / "home") as s:
        s.config.ingest.workers = 2
        s.datanets.create("pool")
        n = cancel_everywhere(
            lambda tok: s.datanets.add_files("pool", files, contributor=A1, cancel=tok),
            lambda: (store_picture(s.paths.db), folder_picture(s.paths.blobs)),
            points=[0, 1, 2, 4, 6, 9],
        )
        assert n >= 10
        assert [f["name"] for f in s.datanets.files("pool")] == ["a.txt", "b.txt"]
        assert s.datanets.verify("pool")["ok"]


def test_the_pool_reads_files_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most about WINDOW_BYTES of files are read ahead of the writer, whatever their number."""
    from studio.core.config import IngestConfig

    rng = random.Random(5)
    paths = []
    for i in range(6):
        p = tmp_path / f"f{i}.txt"
        p.write_text(_prose(rng, 60))
        paths.append(p)
    size = max(p.stat().st_size for p in paths)
    monkeypatch.setattr(ingest_plan, "CHUNK_BYTES", 4 * 1024)
    monkeypatch.setattr(ingest_plan, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest_plan, "WINDOW_BYTES", 2 * size)
    reads: list[str] = []
    real_read = ingest_plan._read

    def counting_read(item: Any, cfg: Any) -> Any:
        reads.append(item.path.name)
        return real_read(item, cfg)

    monkeypatch.setattr(ingest_plan, "_read", counting_read)
    cfg = IngestConfig()
    cfg.workers = 2
    prepared = ingest_plan.prepare_files(paths, None, cfg)
    assert reads == []  # the cheap checks read nothing
    plans = ingest_plan.plans_of(prepared, cfg)
    first_parts = next(plans)
    assert first_parts.head["name"] == "f0.txt" and 1 <= len(reads) <= 4  # not all six
    first = ingest_plan._finish(first_parts.head, list(first_parts), cfg)
    rest = [ingest_plan._finish(fp.head, list(fp), cfg) for fp in plans]
    assert [p["name"] for p in rest] == [f"f{i}.txt" for i in range(1, 6)]
    serial = [ingest_plan.plan_file(p, None, cfg) for p in paths]
    for a, b in zip([first, *rest], serial, strict=True):
        assert a["hashes"] == b["hashes"] and a["pack"] == b["pack"]
        assert (a["sigs"] == b["sigs"]).all() and a["sources"] == b["sources"]


def test_packs_planned_for_a_file_that_is_not_added_are_taken_back(
    studio: Any, tmp_path: Path
) -> None:
    """Packs are written while planning; those of a file found to be a duplicate afterwards, or
    refused after planning, are removed again: the blobs folder holds only what rows use."""
    from cancelkit import folder_picture

    f = tmp_path / "log.txt"
    f.write_text(_prose(random.Random(2), 40))
    dn = studio.datanets
    dn.create("packs")
    dn.add_files("packs", [f], contributor=A1)
    before = folder_picture(studio.paths.blobs)
    studio.config.ingest.target_chars = 300  # the same file would now pack differently
    (again,) = dn.add_files("packs", [f], contributor=A1)
    assert again["status"] == "duplicate"
    studio.config.ingest.max_records_per_file = 3
    g = tmp_path / "long.txt"
    g.write_text(_prose(random.Random(3), 40))
    (refused,) = dn.add_files("packs", [g], contributor=A1, all_or_nothing=False)
    assert refused["status"] == "error" and "more than 3 records" in refused["error"]
    assert folder_picture(studio.paths.blobs) == before


_real_attempt = ingest_plan._attempt


def _plan_then_die(c: Any, cfg: Any, store: Any = None) -> Any:
    """Stands in for ingest_plan._attempt in the pool's workers (they import this module to
    unpickle it): the chunk is planned and its pack written, then the worker is SIGKILLed, as
    the kernel's out-of-memory killer would do, before it can report that pack."""
    out = ingest_plan._attempt(c, cfg, store)  # (the worker's own module: not monkeypatched)
    if c.name == "b.txt" and c.byte_base > 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return out


def test_a_worker_killed_mid_ingest_is_a_clear_error_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cancelkit import folder_picture, store_picture

    from studio.app import Studio
    from studio.core.errors import StudioError

    rng = random.Random(13)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (data / name).write_text(_prose(rng, 120))
    files = sorted(data.iterdir())
    with Studio(tmp_path / "home") as s:
        s.config.ingest.workers = 2
        s.datanets.create("pool")
        s.datanets.add_files("pool", files[:1], contributor=A1)  # something committed before
        before = store_picture(s.paths.db), folder_picture(s.paths.blobs)
        monkeypatch.setattr(ingest_plan, "CHUNK_BYTES", 8 * 1024)
        monkeypatch.setattr(ingest_plan, "POOL_MIN_BYTES", 0)
        monkeypatch.setattr(ingest_plan, "_attempt", _plan_then_die)
        monkeypatch.setattr(ingest_pool, "STEAL", False)  # every chunk to a worker
        with pytest.raises(StudioError) as e:
            s.datanets.add_files("pool", files[1:], contributor=A1)
        msg = str(e.value)
        assert type(e.value).__module__ == "studio.core.errors"  # not BrokenProcessPool
        assert msg.startswith("b.txt: an ingest worker process stopped abruptly (killed: SIGKILL")
        assert "nothing was added" in msg and "ingest.workers = 1" in msg
        # packs reported and unreported (the killed worker's), markers and temp files: all gone
        assert (store_picture(s.paths.db), folder_picture(s.paths.blobs)) == before
        monkeypatch.setattr(ingest_plan, "_attempt", _real_attempt)
        added = s.datanets.add_files("pool", files[1:], contributor=A1)  # re-running is safe
        assert [r["status"] for r in added] == ["added", "added"]
        assert s.datanets.verify("pool")["ok"]


def _indexes(db: Path) -> list[tuple[str, str]]:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"
            " ORDER BY name"
        ).fetchall()
    finally:
        con.close()


def test_a_large_add_rebuilds_the_record_indexes_in_its_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large add drops the record table's randomly fed index (content hashes) and builds it
    again before COMMIT, keeping the others: the same indexes after, the same rows as an add that keeps them, and a cancel at any of its
    checks (before or after the rebuild) leaves the indexes, rows and blobs as they were."""
    from cancelkit import cancel_everywhere, folder_picture, store_picture

    from studio.app import Studio
    from studio.core.datanets import adding

    rng = random.Random(17)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (data / name).write_text(_prose(rng, 150))
    files = sorted(data.iterdir())
    rebuilt: list[int] = []
    real_rebuild = adding.BulkIndexes.rebuild

    def counting_rebuild(self: Any) -> None:
        rebuilt.append(len(self.dropped))
        real_rebuild(self)

    monkeypatch.setattr(adding.BulkIndexes, "rebuild", counting_rebuild)
    pictures = {}
    for label, min_rows in (("kept", 10**9), ("rebuilt", 10)):
        monkeypatch.setattr(adding.BulkIndexes, "MIN_ROWS", min_rows)
        with Studio(tmp_path / label) as s:
            s.datanets.create("bulk")
            s.datanets.add_files("bulk", files[:1], contributor=A1)  # a few rows already there
            before = _indexes(s.paths.db)
            assert len(before) >= 4  # m001's and m007's
            rebuilt.clear()
            cancel_everywhere(
                lambda tok, s=s: s.datanets.add_files(
                    "bulk", files[1:], contributor=A1, cancel=tok
                ),
                lambda s=s: (
                    store_picture(s.paths.db),
                    folder_picture(s.paths.blobs),
                    _indexes(s.paths.db),
                ),
            )
            assert _indexes(s.paths.db) == before
            # each add that got that far dropped that one (or none, when not worth it)
            assert rebuilt and set(rebuilt) == ({1} if label == "rebuilt" else {0})
            con = s.store.conn
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            plan = con.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM records WHERE datanet_id = 1 AND content_sha256 = 'x'"
            ).fetchall()
            assert "records_content" in str([tuple(r) for r in plan])
            pictures[label] = _snapshot_of(s, "bulk")
    assert pictures["kept"] == pictures["rebuilt"] and len(pictures["kept"]) > 50


def test_the_writer_plans_chunks_itself_while_the_workers_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks no worker has taken yet are planned by the writer rather than waited for (here the
    workers take a second to start): the plans are the serial path's all the same."""
    import multiprocessing as mp
    import time
    from concurrent.futures import ProcessPoolExecutor

    from studio.core.config import IngestConfig

    rng = random.Random(19)
    paths = []
    for i in range(3):
        p = tmp_path / f"f{i}.txt"
        p.write_text(_prose(rng, 80))
        paths.append(p)
    monkeypatch.setattr(ingest_plan, "CHUNK_BYTES", 4 * 1024)
    monkeypatch.setattr(ingest_plan, "POOL_MIN_BYTES", 0)

    def slow_pool(n: int) -> Any:
        ctx = mp.get_context("spawn")
        return ProcessPoolExecutor(n, mp_context=ctx, initializer=time.sleep, initargs=(1.0,))

    monkeypatch.setattr(ingest_pool, "_start_pool", slow_pool)
    cfg = IngestConfig()
    cfg.workers = 2
    n_chunks = sum(
        len(ingest_plan._read(c, cfg)[1]) for c in ingest_plan.prepare_files(paths, None, cfg)
    )
    before = ingest_pool.STOLEN[0]
    pooled = ingest_plan.plan_files(paths, None, cfg)
    stolen = ingest_pool.STOLEN[0] - before
    # all but those already handed to the (sleeping) workers' queue: max_workers + 1
    assert n_chunks - 3 <= stolen < n_chunks and n_chunks > 10
    serial = [ingest_plan.plan_file(p, None, cfg) for p in paths]
    for a, b in zip(pooled, serial, strict=True):
        assert isinstance(a, dict)
        assert a["hashes"] == b["hashes"] and a["sources"] == b["sources"]
        assert a["pack"] == b["pack"] and a["packs"] == b["packs"]
        assert (a["sigs"] == b["sigs"]).all() and (a["offsets"] == b["offsets"]).all()


def test_the_writer_steals_only_while_the_workers_start_or_fall_behind() -> None:
    from concurrent.futures import Future

    queued: Future[Any] = Future()
    running: Future[Any] = Future()
    assert running.set_running_or_notify_cancel()
    done: Future[Any] = Future()
    done.set_result({})
    assert ingest_pool.may_steal(queued, workers_up=True)  # the workers are behind
    assert ingest_pool.may_steal(running, workers_up=False)  # they are still starting
    assert not ingest_pool.may_steal(running, workers_up=True)  # it comes soon: wait for it
    assert not ingest_pool.may_steal(done, workers_up=False)


def test_pool_workers_yield_the_cpu_to_the_writer_and_keep_their_heap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The workers run at a lower priority than the writer, the pipeline's slowest stage, and
    set glibc malloc's thresholds once, when they start (where there is glibc)."""
    import sys

    pool = ingest_pool._start_pool(1)
    try:
        assert pool.submit(os.nice, 0).result() == min(19, os.nice(0) + ingest_pool.WORKER_NICE)
        if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
            assert pool.submit(ingest_pool._steady_malloc).result() is True
    finally:
        pool.shutdown()
    assert ingest_pool.WORKER_NICE > 0
    calls: list[str] = []
    monkeypatch.setattr(ingest_pool, "_lower_priority", lambda: calls.append("nice"))
    monkeypatch.setattr(ingest_pool, "_steady_malloc", lambda: calls.append("malloc"))
    ingest_pool._worker_setup()
    assert calls == ["nice", "malloc"]


def test_a_worker_sends_its_pack_by_the_blob_store_not_back(tmp_path: Path) -> None:
    """A planned chunk comes back without its pack (written to the blob store by the worker);
    the writer decodes the few texts it needs from that blob."""
    import hashlib

    from studio.core.config import IngestConfig

    cfg = IngestConfig()
    text = _prose(random.Random(3), 30)
    (chunk,) = ingest_plan.chunks("txt", "a.txt", text.encode(), None)
    out = ingest_plan.plan_chunk(chunk, cfg, (str(tmp_path / "blobs"), os.getpid()))
    assert out["pack"] is None
    pack = Path(out["pack_at"]).read_bytes()
    assert hashlib.sha256(pack).hexdigest() == out["pack_id"] and out["created"] == [out["pack_id"]]
    head = {"name": "a.txt", "format": "txt"}
    plan = ingest_plan._merge(head, [out], cfg)
    texts = ingest_plan.PlannedTexts(plan)
    assert len(texts) > 1 and "".join(texts).replace("\n", "") in text.replace("\n", "")
    assert [hashlib.sha256(t.encode()).hexdigest() for t in texts] == plan["hashes"]
    in_memory = ingest_plan._merge(head, [ingest_plan.plan_chunk(chunk, cfg, None)], cfg)
    assert list(ingest_plan.PlannedTexts(in_memory)) == list(texts)


def _chunked_files(tmp_path: Path) -> list[Path]:
    """Files of several chunks each (with CHUNK_BYTES = 16 KiB), with exact duplicates across
    chunks and files, near duplicates, PII and a refused secret."""
    rng = random.Random(23)
    data = tmp_path / "data"
    data.mkdir()
    base = _prose(rng, 300)
    paras = base.split("\n\n")
    (data / "a.txt").write_text(base + "\n\n" + "\n\n".join(paras[:40]) + "\n")
    near = [p.replace(" ", "  ", 1) for p in paras[150:170]]  # (the same shingles)
    rows = [json.dumps({"text": p}) for p in paras[100:260] + paras[100:140] + near]
    rows.insert(90, json.dumps({"prompt": "key?", "response": "0x" + "ab12" * 16}))
    rows.insert(20, json.dumps({"text": "Call +44 20 7946 0958 after the tide."}))
    (data / "b.jsonl").write_text("\n".join(rows) + "\n")
    return sorted(data.iterdir())


def test_a_file_written_chunk_by_chunk_stores_what_one_write_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer takes a file's chunks one run at a time (FileParts.groups): one chunk per run
    or the whole file in one gives the same records, duplicates and scores."""
    from studio.app import Studio

    files = _chunked_files(tmp_path)
    monkeypatch.setattr(ingest_plan, "CHUNK_BYTES", 16 * 1024)
    runs: dict[bool, list[int]] = {}
    seen = {}
    real_groups = ingest_plan.FileParts.groups
    for one_at_a_time in (False, True):
        sizes: list[int] = []

        def groups(self: Any, one: bool = one_at_a_time, sizes: list[int] = sizes) -> Any:
            if one:
                self._ready = lambda: False
            for g in real_groups(self):
                sizes.append(len(g))
                yield g

        monkeypatch.setattr(ingest_plan.FileParts, "groups", groups)
        with Studio(tmp_path / f"home{one_at_a_time}") as s:
            s.config.ingest.workers = 1
            s.datanets.create("runs")
            res = s.datanets.add_files("runs", files, contributor=A1)
            seen[one_at_a_time] = (_snapshot_of(s, "runs"), [r["flags"] for r in res])
            assert s.datanets.verify("runs")["ok"]
        runs[one_at_a_time] = sizes
    assert runs[False] == [1, 1] or all(n > 1 for n in runs[False])  # whole files
    assert set(runs[True]) == {1} and len(runs[True]) > 6
    assert seen[False] == seen[True]
    flags = seen[True][1]
    assert flags[1]["exact_duplicate"] >= 40 and flags[1]["near_duplicate"] >= 15
    assert flags[1]["pii"] >= 1


def test_a_file_refused_at_its_last_chunk_is_taken_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A malformed line in the last chunk of a file whose first chunks are written already: the
    file is refused whole and the next file gets what it would have got without it."""
    from studio.app import Studio

    good = _chunked_files(tmp_path)
    rng = random.Random(29)
    rows = [json.dumps({"text": p}) for p in _prose(rng, 200).split("\n\n")]
    bad = tmp_path / "data" / "a2-late-error.jsonl"
    bad.write_text("\n".join(rows) + "\n{not json\n")
    monkeypatch.setattr(ingest_plan, "CHUNK_BYTES", 16 * 1024)
    monkeypatch.setattr(ingest_plan, "POOL_MIN_BYTES", 0)
    assert len(ingest_plan.chunks("jsonl", bad.name, bad.read_bytes(), None)) > 2
    written: list[str] = []
    from studio.core.datanets import adding

    real = adding.AddingFiles._write_part

    def noting(self: Any, dn: Any, plan: dict[str, Any], *a: Any) -> None:
        written.append(plan["name"])
        real(self, dn, plan, *a)

    monkeypatch.setattr(adding.AddingFiles, "_write_part", noting)
    real_groups = ingest_plan.FileParts.groups

    def one_at_a_time(self: Any) -> Any:
        self._ready = lambda: False  # the bad file's first chunks are written before its last
        return real_groups(self)

    monkeypatch.setattr(ingest_plan.FileParts, "groups", one_at_a_time)
    seen = {}
    for label, files, workers in (
        ("without", good, 1),
        ("serial", [good[0], bad, good[1]], 1),
        ("pool", [good[0], bad, good[1]], 2),
    ):
        with Studio(tmp_path / label) as s:
            s.config.ingest.workers = workers
            s.datanets.create("late")
            written.clear()
            res = s.datanets.add_files("late", files, contributor=A1, all_or_nothing=False)
            if label != "without":
                assert [r["status"] for r in res] == ["added", "error", "added"]
                assert (
                    "malformed JSON lines" in res[1]["error"]
                    and ": 201 (not valid" in res[1]["error"]
                )
                assert bad.name in written  # its first chunks were written, then taken back
            files_rows = s.store.conn.execute("SELECT name, records FROM datanet_files").fetchall()
            seen[label] = (_snapshot_of(s, "late"), [tuple(r) for r in files_rows])
            assert s.store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert seen["serial"] == seen["without"] == seen["pool"]


def test_the_duplicate_state_tops_up_by_record_id(studio: Any, tmp_path: Path) -> None:
    """The query that brings the duplicate state up to date runs for every chunk written: it must
    read a range of record ids, not every record of the Datanet (by an index, then sorted)."""
    f = tmp_path / "log.txt"
    f.write_text(_prose(random.Random(2), 20))
    studio.datanets.create("top")
    studio.datanets.add_files("top", [f], contributor=A1)
    dn_id = studio.store.one("SELECT id FROM datanets WHERE name = 'top'")["id"]
    studio.datanets._dedupe_cache.clear()
    sql: list[str] = []
    studio.store.conn.set_trace_callback(sql.append)
    try:
        studio.datanets._dedupe_state(dn_id)
    finally:
        studio.store.conn.set_trace_callback(None)
    (query,) = [q for q in sql if "FROM records" in q]
    plan = " ".join(str(tuple(r)) for r in studio.store.conn.execute("EXPLAIN QUERY PLAN " + query))
    assert "INTEGER PRIMARY KEY" in plan and "TEMP B-TREE" not in plan, plan
