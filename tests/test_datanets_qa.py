"""Regression tests for the QA findings: duplicate-heavy ingest stays linear, decimal MB size
limit, recovery phrases need a BIP-39 checksum, wording, and the Datanet owner (m005)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from studio.core import quality
from studio.core.blobs import BlobStore
from studio.core.config import Config
from studio.core.datanets import Datanets
from studio.core.errors import InvalidInput, NotFound
from studio.core.events import EventBus
from studio.core.store import Store

A1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
A2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
NOTE = "The keeper rang the fog bell twice at dusk when the Hollow Bell rock went under the tide."
LONG = (
    "Every morning the keeper climbed the one hundred and fourteen stairs, wound the clockwork of "
    "the lamp, trimmed the wick and wrote the height of the tide into the brown log book. On the "
    "ninth of March the spring tide covered the Hollow Bell rock, the cat slept on the warm lens "
    "housing, and a pilot cutter passed close under the gallery at half past six in the evening."
)


def _spy_rank(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many candidates each _rank call is handed."""
    sizes: list[int] = []
    orig = quality.DuplicateIndex._rank

    def spy(self: Any, cands: Any, sig: Any, exclude: Any) -> Any:
        sizes.append(len(cands or ()))
        return orig(self, cands, sig, exclude)

    monkeypatch.setattr(quality.DuplicateIndex, "_rank", spy)
    return sizes


# -- 1. many duplicates -----------------------------------------------------------------------
def test_identical_signatures_give_bounded_candidate_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _spy_rank(monkeypatch)
    index = quality.DuplicateIndex(0.85)
    sig = quality.signatures([NOTE])[0]
    n = 400
    found = index.check_and_add_many(list(range(1, n + 1)), np.repeat(sig[None, :], n, axis=0))
    assert len(found) == n - 1  # every later copy still sees an earlier one
    assert max(sizes) <= quality.DuplicateIndex.CAP  # was n - 1: quadratic work
    sizes.clear()
    assert index.candidates(sig, index.band_keys(sig[None, :])[0])
    assert max(sizes) <= quality.DuplicateIndex.CAP


def test_reloaded_dedupe_state_skips_exact_duplicates(
    studio: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dn = studio.datanets
    dn.create("dup")
    rows = "\n".join(json.dumps({"text": LONG}) for _ in range(300))
    (tmp_path / "dup.jsonl").write_text(rows + "\n")
    (res,) = dn.add_files("dup", [tmp_path / "dup.jsonl"], contributor=A1)
    assert res["records"] == 300
    # a new process: the dedupe state is rebuilt from the database
    sizes = _spy_rank(monkeypatch)
    fresh = Datanets(studio.store, studio.blobs, studio.config, studio.events)
    (tmp_path / "near.txt").write_text(LONG.replace("evening", "morning") + "\n")
    (tmp_path / "other.txt").write_text("Sourdough wants rye flour, warm water and patience.\n")
    near, other = fresh.add_files(
        "dup", [tmp_path / "near.txt", tmp_path / "other.txt"], contributor=A1
    )
    seen, index = fresh._dedupe_state(fresh._row("dup")["id"])
    assert len(index.sigs) == 3  # one of the 300 copies (was all 300), near, other
    assert max(sizes, default=0) <= quality.DuplicateIndex.CAP
    recs = {r["source"]["file"]: r for r in fresh.records("dup")}
    assert near["flags"]["near_duplicate"] == 1 and other["flags"]["near_duplicate"] == 0
    assert not recs["other.txt"]["reasons"]


# -- 2. size limit in decimal MB ----------------------------------------------------------------
def test_size_limit_is_decimal_mb(cli: Any, studio_home: Path, tmp_path: Path) -> None:
    assert cli("datanet", "create", "nn")[0] == 0
    (studio_home / "config.json").write_text(json.dumps({"ingest": {"max_file_mb": 0.001}}))
    f = tmp_path / "a.txt"
    f.write_bytes(b"word " * 204)  # 1020 bytes: over 1000 (MB), under 1048 (MiB)
    rc, out, err = cli("datanet", "add", "nn", str(f), "--contributor", A1)
    assert rc == 1 and "1020" not in err and "over the 0.001 MB limit" in err
    assert "max_file_mb" in err
    f.write_bytes(b"word " * 199 + b"word")  # 999 bytes
    assert cli("datanet", "add", "nn", str(f), "--contributor", A1)[0] == 0


# -- 3. recovery phrases ------------------------------------------------------------------------
def test_bip39_words_without_checksum_are_not_a_phrase() -> None:
    words = "abandon ability able about above absent absorb abstract absurd abuse access accident"
    assert not quality.bip39_checksum_ok(words.split())
    assert quality.scan(f"Glossary: {words}.").refused is None
    # (a run of list words still has a 1 in 16 chance per 12-word window of a valid checksum)


@pytest.mark.parametrize("n_words", [12, 24])
def test_real_mnemonics_are_refused(n_words: int) -> None:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    _, phrase = Account.create_with_mnemonic(num_words=n_words)
    assert quality.bip39_checksum_ok(phrase.split())
    s = quality.scan(f"keep this safe: {phrase} (do not share)")
    assert s.refused and "recovery phrase" in s.refused
    # and through the batched path ingest uses
    assert quality.scan_many(["nothing here", f"words {phrase}"])[1].refused


# -- 4. wording ---------------------------------------------------------------------------------
def test_singular_record_and_missing_version_lists_existing(
    cli: Any, studio_home: Path, tmp_path: Path
) -> None:
    assert cli("datanet", "create", "nn")[0] == 0
    f = tmp_path / "a.txt"
    f.write_text(NOTE + "\n")
    rc, out, err = cli("datanet", "add", "nn", str(f), "--contributor", A1)
    assert rc == 0 and "added 1 record" in out and "1 records" not in out
    assert "1 new record in" in out
    assert cli("datanet", "curate", "nn", "--accept-all")[0] == 0
    rc, out, err = cli("datanet", "snapshot", "nn")
    assert rc == 0 and "1 record," in out
    rc, out, err = cli("datanet", "export", "nn", "--version", "7", "--out", str(tmp_path / "x"))
    assert rc == 1 and "no version 7" in err and "v1" in err and "Create one" not in err


# -- 5. owner -----------------------------------------------------------------------------------
def test_owner_defaults_validates_and_is_set_if_missing(studio: Any) -> None:
    dn = studio.datanets
    assert dn.create("na")["owner"] is None
    assert dn.create("nb", owner=A1.lower())["owner"] == A1
    studio.config.active_account = A2.lower()
    assert dn.create("nc")["owner"] == A2
    with pytest.raises(InvalidInput, match="owner"):
        dn.create("nd", owner="0x1234")
    with pytest.raises(NotFound):
        dn.get("nd")  # nothing written
    assert {d["name"]: d["owner"] for d in dn.list()} == {"na": None, "nb": A1, "nc": A2}
    assert dn.set_owner_if_missing("na", A2.lower())["owner"] == A2
    assert dn.set_owner_if_missing("nb", A2)["owner"] == A1  # an existing owner is kept
    with pytest.raises(InvalidInput):
        dn.set_owner_if_missing("na", "nope")
    with pytest.raises(NotFound):
        dn.set_owner_if_missing("zz", A1)


def test_owner_cli(cli: Any) -> None:
    rc, out, err = cli("datanet", "create", "nn", "--owner", A1.lower())
    assert rc == 0 and A1 in out
    rc, out, err = cli("datanet", "show", "nn")
    assert rc == 0 and f"owner {A1}" in out
    rc, out, err = cli("--json", "datanet", "show", "nn")
    assert rc == 0 and json.loads(out)["owner"] == A1
    rc, out, err = cli("datanet", "create", "mm", "--owner", "0xbad")
    assert rc == 1 and len(err.strip().splitlines()) == 1


def test_m005_adds_a_nullable_owner_to_old_datanets(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    old = Store(path, target_version=4)
    assert old.version < 5
    Datanets(old, BlobStore(tmp_path / "b"), Config(), EventBus()).create("old", summary="s")
    old.close()
    new = Store(path)
    assert new.version >= 5
    dn = Datanets(new, BlobStore(tmp_path / "b"), Config(), EventBus())
    assert dn.get("old")["owner"] is None and dn.get("old")["summary"] == "s"
    assert dn.set_owner_if_missing("old", A1)["owner"] == A1
    new.close()


# -- 6. the cyclic GC is off only during the bulk ingest ----------------------------------------
def test_add_files_restores_the_gc_state(studio: Any, tmp_path: Path) -> None:
    import gc

    dn = studio.datanets
    dn.create("gc-net")
    f = tmp_path / "a.txt"
    f.write_text(NOTE + "\n")
    assert gc.isenabled()
    dn.add_files("gc-net", [f], contributor=A1)
    assert gc.isenabled()
    with pytest.raises(InvalidInput):
        dn.add_files("gc-net", [tmp_path / "missing.txt"], contributor=A1)
    assert gc.isenabled()
    gc.disable()
    try:
        dn.add_files("gc-net", [f], contributor=A1)
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
