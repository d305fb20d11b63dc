"""Datanets end to end through the API: ingest, dedupe, curation, edits, snapshots, proofs,
verify (tampering reported per record) and export."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_merkle import independent_root, oz_verify

from studio.core import merkle
from studio.core.datanets import SnapshotRecord, checksum_address
from studio.core.errors import AlreadyExists, InvalidInput, NotFound

A1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
A2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"

TIDES = """# Tide log

## 3 March

High water at 04:12 and again at 16:37. The spring tide covered the Hollow Bell rock completely.

## 9 March

The lamp is a fourth-order Fresnel lens with a single flash every seven seconds. Pilot the cat slept on it.

## 14 March

A neap tide: the range between high and low water was only one metre and forty centimetres today.
"""

BAKING = (
    "\n".join(
        json.dumps(x)
        for x in [
            {
                "prompt": "What is the starter called?",
                "response": "Old Brindle, fed twice a day with rye and white flour.",
            },
            {
                "text": "The house loaf is made at seventy-eight percent hydration, 780 grams of water per kilogram."
            },
            {
                "messages": [
                    {"role": "user", "content": "How long is the cold retard?"},
                    {
                        "role": "assistant",
                        "content": "Fourteen hours in the fridge at four degrees.",
                    },
                ]
            },
        ]
    )
    + "\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
def filled(studio: Any, tmp_path: Path) -> Any:
    dn = studio.datanets
    dn.create("field-notes", summary="notes", tags="tides,baking", license="CC-BY-4.0")
    dn.add_files("field-notes", [write(tmp_path, "tides.md", TIDES)], contributor=A1.lower())
    dn.add_files("field-notes", [write(tmp_path, "baking.jsonl", BAKING)], contributor=A2)
    return dn


def test_create_get_list_and_name_rules(studio: Any) -> None:
    dn = studio.datanets
    d = dn.create("open-notes", summary="s", description="# Hi", tags=["b", "a"], license="CC0-1.0")
    assert d["name"] == "open-notes" and d["tags"] == ["a", "b"] and d["kind"] == "text"
    assert [x["name"] for x in dn.list()] == ["open-notes"]
    with pytest.raises(AlreadyExists, match="already exists"):
        dn.create("open-notes")
    for bad in ("", "Upper", "-dash", "x", "a b"):
        with pytest.raises(InvalidInput):
            dn.create(bad)
    with pytest.raises(InvalidInput, match="SPDX"):
        dn.create("ok-name", license="not a license")
    with pytest.raises(NotFound, match="datanet list"):
        dn.get("missing")


def test_records_keep_provenance_and_contributor(filled: Any) -> None:
    recs = filled.records("field-notes")
    assert len(recs) == 6
    tides = [r for r in recs if r["source"]["file"] == "tides.md"]
    assert {r["contributor"] for r in tides} == {A1}  # stored checksummed
    assert all("offset" in r["source"] for r in tides)
    baking = [r for r in recs if r["source"]["file"] == "baking.jsonl"]
    assert [r["kind"] for r in baking] == ["prompt_response", "text", "chat"]
    assert [r["source"]["row"] for r in baking] == [1, 2, 3]
    assert all(r["status"] == "pending" and r["license"] == "CC-BY-4.0" for r in recs)


def test_contributor_defaults_to_active_wallet_and_is_validated(
    studio: Any, tmp_path: Path
) -> None:
    dn = studio.datanets
    dn.create("n1")
    f = write(
        tmp_path, "a.txt", "Some text about tides long enough to be a fine record for the test."
    )
    with pytest.raises(InvalidInput, match="no contributor: create a wallet"):
        dn.add_files("n1", [f])
    with pytest.raises(InvalidInput, match="checksum"):
        dn.add_files("n1", [f], contributor=A1.replace("C", "c", 1))
    studio.config.active_account = A2.lower()
    (res,) = dn.add_files("n1", [f])
    assert res["status"] == "added" and dn.records("n1")[0]["contributor"] == A2
    assert checksum_address(A1.upper().replace("0X", "0x")) == A1


def test_same_file_twice_adds_nothing(filled: Any, tmp_path: Path) -> None:
    before = len(filled.records("field-notes"))
    (res,) = filled.add_files("field-notes", [tmp_path / "tides.md"], contributor=A1)
    assert res["status"] == "duplicate" and "already added" in res["message"]
    assert len(filled.records("field-notes")) == before


LONG = (
    "Varroa mites are counted by the sugar roll method: half a cup of bees, about three hundred, are shaken "
    "with icing sugar and the mites that fall through the mesh are counted. More than nine mites per roll "
    "in August means the colony needs treatment before the winter bees are raised in the autumn."
)


def test_duplicates_across_files_are_flagged(filled: Any, tmp_path: Path) -> None:
    filled.add_files("field-notes", [write(tmp_path, "bees.txt", LONG)], contributor=A1)
    results = filled.add_files(
        "field-notes",
        [
            write(tmp_path, "copy.md", TIDES + "\n"),
            write(tmp_path, "bees2.txt", LONG.replace("icing", "caster")),
        ],
        contributor=A1,
    )
    assert [r["flags"]["exact_duplicate"] for r in results] == [3, 0]
    assert [r["flags"]["near_duplicate"] for r in results] == [0, 1]
    new = [
        r for r in filled.records("field-notes") if r["source"]["file"] in ("copy.md", "bees2.txt")
    ]
    assert sum(any("exact duplicate of record #" in x for x in r["reasons"]) for r in new) == 3
    assert sum(any("near duplicate of record #" in x for x in r["reasons"]) for r in new) == 1
    assert all(r["score"] <= 0.5 for r in new)


def test_secret_records_are_never_stored(studio: Any, tmp_path: Path) -> None:
    dn = studio.datanets
    dn.create("n2")
    key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    f = write(
        tmp_path,
        "s.jsonl",
        json.dumps({"text": "Fine record about bees and their hives in summer."})
        + "\n"
        + json.dumps({"text": f"my private key is 0x{key}"})
        + "\n",
    )
    (res,) = dn.add_files("n2", [f], contributor=A1)
    assert res["records"] == 1 and res["refused"][0]["where"] == "s.jsonl row 2"
    db = Path(studio.paths.db).read_bytes() + b"".join(
        p.read_bytes() for p in studio.paths.blobs.rglob("*") if p.is_file()
    )
    assert key.encode() not in db


def test_curation_edit_snapshot_proof(filled: Any) -> None:
    dn = filled
    ids = [r["id"] for r in dn.records("field-notes")]
    with pytest.raises(InvalidInput, match="reason"):
        dn.curate("field-notes", reject=[ids[0]])
    with pytest.raises(NotFound, match="#999"):
        dn.curate("field-notes", accept=[999])
    dn.curate("field-notes", reject=[ids[0]], reason="off topic")
    res = dn.curate("field-notes", accept_all=True, min_score=0.9)
    assert set(res["changed"]) | set(res["left_pending"]) == set(ids[1:])
    accepted = [r for r in dn.records("field-notes", "accepted")]
    snap = dn.snapshot("field-notes")
    assert snap == {"version": 1, "root": snap["root"], "records": len(accepted)}
    # root against an independent computation over the accepted records, id order
    leaves = []
    for r in accepted:
        leaves.append(merkle.leaf_hash(r["content_sha256"], r["contributor"], r["license"]))
    assert snap["root"] == "0x" + independent_root(leaves).hex()
    # nothing changed: same version back
    assert dn.snapshot("field-notes")["version"] == 1
    recs = dn.snapshot_records("field-notes")
    assert all(isinstance(r, SnapshotRecord) for r in recs) and [r.index for r in recs] == list(
        range(len(recs))
    )
    for r in recs:
        assert hashlib.sha256(_canonical(r)).hexdigest() == r.content_sha256
        proof = [bytes.fromhex(p[2:]) for p in dn.proof("field-notes", r.record_id)]
        assert oz_verify(proof, bytes.fromhex(snap["root"][2:]), bytes.fromhex(r.leaf[2:]))
    chat = next(r for r in recs if r.kind == "chat")
    assert (
        chat.messages and chat.messages[0]["role"] == "user" and "assistant: Fourteen" in chat.text
    )
    # an edit is a new record; the old one is unchanged and leaves future snapshots
    target = recs[0]
    new = dn.edit_record(
        "field-notes", target.record_id, "Edited: high water at 04:15, not 04:12, on 3 March."
    )
    assert new["supersedes"] == target.record_id and new["status"] == "pending"
    dn.curate("field-notes", accept=[new["id"]])
    v2 = dn.snapshot("field-notes")
    assert v2["version"] == 2
    v2_ids = [r.record_id for r in dn.snapshot_records("field-notes")]
    assert new["id"] in v2_ids and target.record_id not in v2_ids
    v1 = dn.snapshot_records("field-notes", 1)
    assert v1[0].record_id == target.record_id and v1[0].text == target.text
    assert [s["version"] for s in dn.snapshots("field-notes")] == [1, 2]
    assert dn.get_snapshot("field-notes", 1)["root"] == snap["root"]


def _canonical(r: SnapshotRecord) -> bytes:
    if r.kind == "text":
        return r.text.encode()
    obj = (
        {"prompt": r.prompt, "response": r.response}
        if r.kind == "prompt_response"
        else {"messages": r.messages}
    )
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_empty_snapshot_is_refused(studio: Any) -> None:
    studio.datanets.create("nothing")
    with pytest.raises(InvalidInput, match="no accepted records"):
        studio.datanets.snapshot("nothing")


def test_verify_reports_tampering_by_record(filled: Any, studio: Any) -> None:
    dn = filled
    dn.curate("field-notes", accept_all=True, min_score=0.0)
    dn.snapshot("field-notes")
    assert dn.verify("field-notes")["ok"]
    recs = dn.snapshot_records("field-notes")
    # 1. flip bytes inside one record of a pack blob on disk
    row = studio.store.one(
        "SELECT pack, pack_offset FROM records WHERE id = ?", (recs[1].record_id,)
    )
    blob = studio.blobs.path_for(row["pack"])
    data = bytearray(blob.read_bytes())
    data[row["pack_offset"]] ^= 0x20
    blob.chmod(0o600)
    blob.write_bytes(bytes(data))
    # 2. rewrite a contributor in the database behind the studio's back
    con = sqlite3.connect(studio.paths.db)
    con.execute("UPDATE records SET contributor = ? WHERE id = ?", (A2, recs[0].record_id))
    con.commit()
    con.close()
    res = dn.verify("field-notes")
    assert not res["ok"]
    by_record = {(p.get("record_id"), p["problem"].split(" ")[0]) for p in res["problems"]}
    assert (recs[1].record_id, "content") in by_record
    assert (recs[0].record_id, "record") in by_record
    assert any("root differs" in p["problem"] for p in res["problems"])


def test_export_jsonl_and_parquet_load_with_datasets(
    filled: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    import datasets

    filled.curate("field-notes", accept_all=True, min_score=0.0)
    filled.snapshot("field-notes")
    j = filled.export("field-notes", tmp_path / "out", "jsonl")
    p = filled.export("field-notes", tmp_path / "out" / "v1.parquet", "parquet", version=1)
    assert Path(j["path"]).name == "field-notes-v1.jsonl" and j["records"] == 6
    with pytest.raises(InvalidInput, match="parquet"):
        filled.export("field-notes", tmp_path / "x.csv", "parquet")
    for fmt, path in (("json", j["path"]), ("parquet", p["path"])):
        ds = datasets.load_dataset(
            fmt, data_files=path, split="train", cache_dir=str(tmp_path / "hf-cache")
        )
        assert ds.num_rows == 6
        assert set(ds.column_names) >= {
            "text",
            "contributor",
            "leaf",
            "content_sha256",
            "kind",
            "messages",
        }
        assert ds[0]["contributor"] == A1


def test_verify_reports_a_missing_blob(filled: Any, studio: Any) -> None:
    filled.curate("field-notes", accept_all=True, min_score=0.0)
    filled.snapshot("field-notes")
    pack = studio.store.one("SELECT pack FROM datanet_files WHERE name = 'baking.jsonl'")["pack"]
    studio.blobs.path_for(pack).unlink()
    res = filled.verify("field-notes")
    missing = [p for p in res["problems"] if p["problem"] == "content blob is missing"]
    assert len(missing) == 3 and not res["ok"]


MIXED = "".join(
    json.dumps({"text": t}) + "\n"
    for t in (
        "The keeper logged high water at dawn and lit the lamp at dusk, as every day.",
        "Proof the dough at twenty-four degrees until it has doubled, then shape it gently.",
        "The keeper logged high water at dawn and lit the lamp at dusk, as every day.",  # duplicate
        "Write to mary.keeper@example.org or call +1 415 555 0199 about the tide tables.",  # PII
        "Smoke the hive twice before lifting the frames; bees calm down within a minute.",
    )
)


@pytest.mark.parametrize("min_score", [0.0, 0.5, 0.9, 1.0])
def test_accept_all_takes_exactly_the_records_at_or_above_the_minimum(
    studio: Any, tmp_path: Path, min_score: float
) -> None:
    dn = studio.datanets
    dn.create("mixed")
    dn.add_files("mixed", [write(tmp_path, "mixed.jsonl", MIXED)], contributor=A1)
    scores = {r["id"]: r["score"] for r in dn.records("mixed")}
    assert min(scores.values()) < 0.5 < max(scores.values()) == 1.0  # both sides are present
    res = dn.curate("mixed", accept_all=True, min_score=min_score)
    accepted = {r["id"]: r["score"] for r in dn.records("mixed", "accepted")}
    pending = {r["id"]: r["score"] for r in dn.records("mixed", "pending")}
    assert accepted == {i: s for i, s in scores.items() if s >= min_score}
    assert pending == {i: s for i, s in scores.items() if s < min_score}
    assert sorted(res["changed"]) == sorted(accepted)
    assert sorted(res["left_pending"]) == sorted(pending)
    with pytest.raises(InvalidInput, match="outside 0..1"):
        dn.curate("mixed", accept_all=True, min_score=1.5)
