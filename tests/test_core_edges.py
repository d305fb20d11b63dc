"""The edges of the core pieces that mutation testing (`make mutants`, docs/mutants.md) found
unpinned: exact file names and modes, the messages a user reads, the branches no other test takes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from studio.core import atomic, cancel, merkle
from studio.core.address import checksum_address
from studio.core.blobs import BlobStore
from studio.core.config import Config
from studio.core.errors import Cancelled, ConfigError, InvalidInput, NotFound
from studio.core.events import Event
from studio.core.hashing import file_sha256, sha256_hex
from studio.core.jobs import JobStream
from studio.core.paths import Paths
from studio.core.proofs import record_proof

A1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


# -- atomic ---------------------------------------------------------------------------------


def test_atomic_write_makes_the_folder_keeps_the_mode_and_the_exact_bytes(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "a.json"
    atomic.write_json(target, {"b": 1, "a": "é"}, mode=0o640)
    # indent 2, sorted keys, one trailing newline, UTF-8: the files people diff and read
    assert target.read_bytes() == b'{\n  "a": "\\u00e9",\n  "b": 1\n}\n'
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    atomic.write_text(target, "héllo")
    assert target.read_bytes() == "héllo".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # the default is owner-only
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_fsync_dir_of_a_missing_folder_is_a_no_op(tmp_path: Path) -> None:
    atomic.fsync_dir(tmp_path / "missing")  # nothing to sync, and no error
    atomic.fsync_dir(tmp_path)


def test_building_dir_swaps_in_the_new_folder_or_leaves_the_old(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    (tmp_path / "model.old").mkdir()  # left by an earlier crash between the two renames
    (tmp_path / "model.old" / "stale").write_text("x")
    with pytest.raises(RuntimeError), atomic.building_dir(dest) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash while building")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.old"]
    assert [p.name for p in dest.iterdir()] == ["old.txt"]
    with atomic.building_dir(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.tmp-")
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no .old, no temp folder
    assert [p.name for p in dest.iterdir()] == ["new.txt"]


def test_building_dir_into_a_new_place(tmp_path: Path) -> None:
    dest = tmp_path / "a" / "b"
    with atomic.building_dir(dest) as tmp:
        (tmp / "f").write_bytes(b"1")
    assert (dest / "f").read_bytes() == b"1"
    assert [p.name for p in dest.parent.iterdir()] == ["b"]


# -- blobs ----------------------------------------------------------------------------------


def test_blob_add_says_whether_it_wrote_and_markers_are_per_process(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    digest = sha256_hex(b"text")
    assert not store.has(digest)
    assert store.add(b"text") == (digest, True)
    assert store.has(digest)
    assert store.add(b"text") == (digest, False)
    assert stat.S_IMODE(store.path_for(digest).stat().st_mode) == 0o600

    assert not store.has_abandoned()  # no .pending folder yet
    d2, created = store.add_pending(b"pending text")
    assert created and store.has(d2)
    mine = store.root / ".pending" / f"{os.getpid()}.{d2}"
    assert mine.exists() and store.has_abandoned()
    other = store.root / ".pending" / f"999999999.{d2}"
    other.touch()
    store.settle(d2)
    assert not mine.exists() and other.exists()
    store.settle(d2)  # twice is fine
    store.add_pending(b"one")
    store.add_pending(b"two")
    store.settle_mine()
    assert [p.name for p in (store.root / ".pending").iterdir()] == [other.name]
    other.unlink()
    assert not store.has_abandoned()

    store.discard(d2)
    assert not store.has(d2)
    store.discard(d2)  # already gone: fine
    with pytest.raises(NotFound, match=rf"Blob {d2[:12]}… is missing from {store.root}"):
        store.get(d2)


# -- hashing --------------------------------------------------------------------------------


def test_file_sha256_over_several_blocks(tmp_path: Path) -> None:
    data = bytes(range(256)) * (5 * 4096 + 17)  # > 5 MiB: several 1 MiB blocks and a tail
    p = tmp_path / "weights.bin"
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest() == sha256_hex(data)
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


# -- merkle ---------------------------------------------------------------------------------


def test_merkle_hex_parsing_and_messages() -> None:
    h = "ab" * 32
    assert merkle.from_hex("0x" + h) == merkle.from_hex("0X" + h) == merkle.from_hex(h)
    assert merkle.to_hex(merkle.from_hex(h)) == "0x" + h
    with pytest.raises(InvalidInput, match=r"^Hash 'zz' is not hex\.$"):
        merkle.from_hex("zz")
    with pytest.raises(InvalidInput, match=r"^Hash '0xabcd' must be 32 bytes\.$"):
        merkle.from_hex("0xabcd")
    with pytest.raises(InvalidInput, match=r"^Contributor address '0x12' must be 20 bytes\.$"):
        merkle.leaf_hash(h, "0x12", "MIT")
    with pytest.raises(InvalidInput, match=r"^Content hash 'no' is not hex\.$"):
        merkle.leaf_hash("no", A1, "MIT")
    # the license is hashed as UTF-8 text: another license, another leaf
    assert merkle.leaf_hash(h, A1, "MIT") != merkle.leaf_hash(h, A1, "CC0-1.0")
    assert merkle.leaf_hash(h, A1, "MIT") == merkle.leaf_hash(h, A1.lower(), "MIT")


def test_merkle_proof_bounds_and_a_wrong_root() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    root = merkle.merkle_root(leaves)
    with pytest.raises(InvalidInput, match=r"^Leaf index 5 is outside 0\.\.4\.$"):
        merkle.merkle_proof(leaves, 5)
    with pytest.raises(InvalidInput, match=r"^Leaf index -1 is outside"):
        merkle.merkle_proof(leaves, -1)
    with pytest.raises(InvalidInput, match="at least one leaf") as e:
        merkle.merkle_root([])
    assert e.value.hint == "Accept some records first."
    for i, leaf in enumerate(leaves):
        proof = merkle.merkle_proof(leaves, i)
        assert merkle.verify_proof(leaf, proof, root)
        assert not merkle.verify_proof(leaf, proof, leaves[0])
        assert not merkle.verify_proof(leaves[(i + 1) % 5], proof, root)
    assert merkle.merkle_proof(leaves, 4) == [
        merkle.hash_pair(
            merkle.hash_pair(leaves[0], leaves[1]), merkle.hash_pair(leaves[2], leaves[3])
        )
    ]  # the odd last leaf is carried up, so its proof is one sibling
    assert merkle.merkle_root(leaves[:1]) == leaves[0]
    assert not merkle.verify_proof(leaves[0], [], leaves[1])


# -- address --------------------------------------------------------------------------------


def test_address_forms_and_messages() -> None:
    assert checksum_address(A1.lower()) == A1
    assert checksum_address("0x" + A1[2:].upper()) == A1
    assert checksum_address(f"  {A1}\n") == A1
    assert checksum_address("0X" + A1[2:].lower()) == A1
    bad = A1[:-1] + ("8" if A1[-1] != "8" else "9")
    with pytest.raises(InvalidInput, match=r"^'0x1' is not an Ethereum address\.") as e:
        checksum_address("0x1")
    assert e.value.hint == "Use 0x followed by 40 hex characters."
    with pytest.raises(InvalidInput, match=r"^'None' is not an address\."):
        checksum_address(None, noun="address")
    wrong_case = A1[:2] + A1[2:].swapcase()
    with pytest.raises(InvalidInput, match="wrong EIP-55 checksum") as e:
        checksum_address(wrong_case)
    assert e.value.hint == "Copy the address again, or write it all in lower case."
    assert checksum_address(bad.lower()).lower() == bad.lower()


# -- paths, config --------------------------------------------------------------------------


def test_data_home_layout(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        paths = Paths.resolve(tmp_path / "home")
        assert os.umask(0o022) == 0o022  # ensure() put the caller's umask back
    finally:
        os.umask(old)
    h = paths.home
    assert (paths.db, paths.config, paths.backups, paths.exports) == (
        h / "studio.sqlite",
        h / "config.json",
        h / "backups",
        h / "exports",
    )
    for d, name in [
        (paths.blobs, "blobs"),
        (paths.logs, "logs"),
        (paths.keystores, "keystores"),
        (paths.models, "models"),
        (paths.devnet, "devnet"),
        (paths.jobs, "jobs"),
    ]:
        assert d == h / name and d.is_dir() and stat.S_IMODE(d.stat().st_mode) == 0o700


def test_config_types_unknown_keys_and_the_file_on_disk(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text(
        json.dumps(
            {
                "network": "custom",
                "unlock_timeout_s": 60,
                "ingest": {"max_file_mb": 5, "min_chars": 10, "not_a_setting": 1},
                "extra": {"x": 1},
                "theme": "dark",
            }
        )
    )
    cfg = Config.load(p)
    assert cfg.network == "custom" and cfg.unlock_timeout_s == 60
    assert cfg.ingest.max_file_mb == 5.0 and isinstance(cfg.ingest.max_file_mb, float)
    assert cfg.ingest.min_chars == 10 and cfg.ingest.max_chars == 4000
    assert cfg.extra == {"extra": {"x": 1}, "theme": "dark"}  # kept, never dropped
    cfg.save(p)
    on_disk = json.loads(p.read_text())
    assert on_disk["theme"] == "dark" and "extra" in on_disk and on_disk["network"] == "custom"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert Config.load(p).extra == cfg.extra

    p.write_text('{"ingest": {"min_chars": 1.5}}')
    with pytest.raises(ConfigError, match=r"^Setting ingest\.min_chars must be int, got 1\.5\.$"):
        Config.load(p)
    p.write_text("[1, 2]")
    with pytest.raises(ConfigError, match=rf"^Settings at {p} must be a JSON object\.$"):
        Config.load(p)
    p.write_text("{")
    with pytest.raises(ConfigError, match=rf"^Cannot read settings at {p}: ") as e:
        Config.load(p)
    assert e.value.hint == "Fix the JSON or delete the file to restore defaults."
    assert Config.load(tmp_path / "none.json").ingest.workers == 0


# -- cancel, jobs ---------------------------------------------------------------------------


def test_cancel_check_helper_and_message() -> None:
    cancel.check(None)  # no token: nothing to check
    tok = cancel.CancelToken()
    assert not tok.cancelled
    cancel.check(tok)
    tok.cancel()
    assert tok.cancelled
    with pytest.raises(Cancelled, match=r"^Cancelled\.") as e:
        cancel.check(tok)
    assert e.value.hint == "Nothing was changed; run it again to finish it."


def test_job_stream_tags_events_with_its_job_and_keeps_their_own() -> None:
    buf = io.StringIO()
    stream = JobStream(buf, job="train-7")
    stream(Event("progress", step=1, total=2))
    stream(Event("log", message="x", job="other"))
    first, second = (json.loads(line) for line in buf.getvalue().splitlines())
    assert first["job"] == "train-7" and first["step"] == 1 and first["kind"] == "progress"
    assert second["job"] == "other"
    assert list(first) == sorted(first)  # sorted keys: the same event, the same line
    untagged = io.StringIO()
    JobStream(untagged)(Event("log", message="y"))
    assert json.loads(untagged.getvalue())["job"] == ""


# -- proofs ---------------------------------------------------------------------------------


def test_record_proof_against_the_snapshot_root(studio: Any, tmp_path: Path) -> None:
    dn = studio.datanets
    dn.create("proved", license="CC0-1.0")
    f = tmp_path / "notes.jsonl"
    f.write_text(
        "".join(
            json.dumps({"text": f"Row {i}: the tide gauge read {i} metres at the harbour wall."})
            + "\n"
            for i in range(3)
        ),
        encoding="utf-8",
    )
    dn.add_files("proved", [f], contributor=A1)
    dn.curate("proved", accept_all=True)
    snap = dn.snapshot("proved")
    ids = [r.record_id for r in dn.snapshot_records("proved")]
    assert len(ids) >= 2
    for rid in ids:
        p = record_proof(dn, studio.store, "proved", rid)
        assert (p.version, p.root, p.record_id) == (snap["version"], snap["root"], rid)
        assert merkle.verify_proof(
            merkle.from_hex(p.leaf), [merkle.from_hex(x) for x in p.proof], merkle.from_hex(p.root)
        )
    with pytest.raises(NotFound):
        record_proof(dn, studio.store, "proved", max(ids) + 100)

    # A second version with one more record: a proof asked of version 1 is version 1's.
    g = tmp_path / "more.jsonl"
    g.write_text(json.dumps({"text": "Row 9: a fourth reading, taken at the lighthouse steps."}))
    dn.add_files("proved", [g], contributor=A1)
    dn.curate("proved", accept_all=True)
    latest = dn.snapshot("proved")
    assert latest["version"] == snap["version"] + 1 and latest["root"] != snap["root"]
    for version, root in ((snap["version"], snap["root"]), (None, latest["root"])):
        p = record_proof(dn, studio.store, "proved", ids[0], version)
        assert p.root == root
        assert merkle.verify_proof(
            merkle.from_hex(p.leaf), [merkle.from_hex(x) for x in p.proof], merkle.from_hex(root)
        )


# -- found by the sampled look (docs/mutants.md, seed 1) ------------------------------------------


def test_changes_count_only_transaction_events_as_transactions() -> None:
    from studio.core.changes import track_changes
    from studio.core.events import EventBus, EventKind

    bus = EventBus()
    with track_changes(bus, "t") as t:
        # a progress line that happens to carry a hash is not a transaction of this call
        bus.emit(Event(EventKind.PROGRESS, data={"hash": "0x" + "aa" * 32}))
        bus.emit(Event(EventKind.TX_SENT, data={"hash": "0x" + "bb" * 32}))
        bus.emit(Event(EventKind.TX_MINED, data={}))  # no hash: nothing to name
    assert t.changes.transactions == frozenset({"0x" + "bb" * 32})


def test_display_name_escapes_each_plane_by_its_width() -> None:
    from studio.core.ingest import display_name

    # \x for one byte, \u for the BMP, \U beyond it
    assert display_name("a\x07b") == "a\\x07b"
    assert display_name("a\u200bb\ufffe") == "a\\u200bb\\ufffe"
    assert display_name("a\U000e0001b") == "a\\U000e0001b"


def test_letter_ratio_outside_ascii_is_a_share_of_the_non_space_characters() -> None:
    from studio.core.quality.scoring import letter_ratio

    assert letter_ratio("héllo 12") == pytest.approx(5 / 7)  # 5 letters of 7 non-space
    assert letter_ratio("hello 12") == pytest.approx(5 / 7)  # the ASCII fast path agrees
    assert letter_ratio(" \u00a0 ") == 0.0


def test_child_env_adds_extras_and_drops_a_frozen_bundles_library_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from studio.core.jobs import child_env

    monkeypatch.setenv("LD_LIBRARY_PATH", "/bundle/_internal")
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG", raising=False)
    monkeypatch.setenv("STUDIO_PASSWORD", "hunter2")
    env = child_env({"STUDIO_EXTRA": "1"})
    assert env["STUDIO_EXTRA"] == "1" and env["LD_LIBRARY_PATH"] == "/bundle/_internal"
    assert "STUDIO_PASSWORD" not in env
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert "LD_LIBRARY_PATH" not in child_env()  # the bundle's own libraries break /bin/sh
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/usr/local/lib")
    assert child_env()["LD_LIBRARY_PATH"] == "/usr/local/lib"


def test_the_ingest_pool_never_forks_a_threaded_process() -> None:
    import multiprocessing as mp

    from studio.core.ingest_pool import _start_pool

    pool = _start_pool(1)  # no worker starts before the first task
    try:
        want = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        assert pool._mp_context.get_start_method() == want  # GUI/server threads: no plain fork
    finally:
        pool.shutdown()


def test_paragraph_offsets_point_past_the_leading_whitespace() -> None:
    from studio.core.ingest import _paragraphs

    text = "a\n\n b\n\n\tc d \n\n# h"
    got = _paragraphs(text, markdown=True)
    assert got == [(0, "a", False), (4, "b", False), (8, "c d", False), (14, "# h", True)]
    assert all(text[off : off + len(p)] == p for off, p, _ in got)  # a record's source offset
