"""Attributor end to end on a real tiny LoRA model: index, the three methods, determinism,
reports, verification, signatures and every bad input the issue lists."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
from attr_fixtures import CANARY, CONTRIBUTORS, OWNER

from studio.attribution.gradients import GradientConfig
from studio.core.errors import AttributionError, Cancelled, InvalidInput, StudioError

CFG = GradientConfig(proj_dim=8, chunk_size=5, batch_size=4)


def _index(st):
    return st.attribution.build_index("tiny-ft", config=CFG)


def test_gradient_attribution_finds_the_canary_and_is_deterministic(att_studio) -> None:
    res = _index(att_studio)
    assert res["records"] == 18 and res["examples"] == 18
    rep = att_studio.attribution.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    assert rep["top_records"][0]["record_id"] == 1
    assert rep["top_records"][0]["contributor"] == CONTRIBUTORS[0]
    assert sum(w["bps"] for w in rep["weights"]) == 10_000
    assert rep["weights"] == sorted(
        rep["weights"], key=lambda w: (-w["bps"], w["contributor"].lower())
    )
    assert rep["report_hash"].startswith("0x") and len(rep["report_hash"]) == 66
    for key in (
        "model",
        "snapshots",
        "method",
        "input",
        "output",
        "top_records",
        "weights",
        "datanets",
    ):
        assert key in rep
    # Same inputs, a fresh attributor (model reloaded): the same bytes.
    att_studio.__dict__.pop("attribution")
    again = att_studio.attribution.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    assert again == rep
    # Records below the top K are pooled to the Datanet owner.
    if rep["records_positive"] > 3:
        assert any(w["contributor"] == OWNER for w in rep["weights"])


def test_span_and_hybrid(att_studio) -> None:
    _index(att_studio)
    out = "The keeper logged tide seventeen at dusk near the beacon."
    rep = att_studio.attribution.attribute("tiny-ft", "Anything?", out, method="span", top_k=2)
    assert rep["top_records"][0]["record_id"] == 1
    assert any("tide seventeen" in sp["text"] for sp in rep["top_records"][0]["spans"])
    hyb = att_studio.attribution.attribute("tiny-ft", "Anything?", out, method="hybrid", top_k=2)
    assert hyb["top_records"][0]["record_id"] == 1
    assert "gradient_score" in hyb["top_records"][0] and hyb["method"]["params"]["hybrid"]
    assert sum(w["bps"] for w in hyb["weights"]) == 10_000


def test_generated_output_and_verify_and_signature(att_studio, tmp_path) -> None:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    class Unlocked:  # what the wallet hands over: .address and .sign_message(bytes)
        def __init__(self) -> None:
            self.acct = Account.from_key("0x" + "59" * 32)
            self.address = self.acct.address

        def sign_message(self, data: bytes):
            return self.acct.sign_message(encode_defunct(primitive=data))

    _index(att_studio)
    signer = Unlocked()
    rep = att_studio.attribution.attribute("tiny-ft", "What did the keeper log?", signer=signer)
    assert rep["output"]["generated"] is True and rep["signature"]["signer"] == signer.address
    path = att_studio.attribution.save_report(rep, tmp_path / "r.json")
    res = att_studio.attribution.verify(path)
    assert res["match"] and res["signature"] == "valid", res
    # Tampered weights: verify names the field (and the hash no longer matches).
    bad = json.loads(path.read_text())
    bad["weights"][0]["bps"] += 1
    res = att_studio.attribution.verify(bad)
    assert (
        not res["match"]
        and "weights[0].bps" in res["differences"]
        and "report_hash" in res["differences"]
    )
    # A re-hashed forgery still fails the re-run, and its old signature no longer recovers the signer.
    from studio.attribution.report import compute_hash

    bad["report_hash"] = compute_hash(bad)
    res = att_studio.attribution.verify(bad)
    assert (
        res["differences"][:2] == ["signature", "weights[0].bps"] and res["signature"] == "invalid"
    )


def test_bad_inputs(att_studio) -> None:
    a = att_studio.attribution
    with pytest.raises(AttributionError, match="base model"):
        a.attribute("tiny", "q?", "answer")
    # The span method needs no gradient index (its suffix array is built on first use).
    rep = a.attribute("tiny-ft", "q?", CANARY, method="span", top_k=1)
    assert rep["top_records"][0]["record_id"] == 1
    _index(att_studio)
    with pytest.raises(InvalidInput, match="empty"):
        a.attribute("tiny-ft", "q?", "   ")
    with pytest.raises(InvalidInput, match="longer than the model"):
        a.attribute("tiny-ft", "q?", "x" * 600)
    with pytest.raises(InvalidInput, match="method"):
        a.attribute("tiny-ft", "q?", "answer", method="magic")
    v = att_studio.models.versions["tiny-ft"]
    idx = v.dir / "attribution" / "gradient"
    before = {p.name: p.read_bytes() for p in idx.iterdir()}
    v.card["adapter_hash"] = "0x" + "99" * 32
    with pytest.raises(AttributionError, match="another adapter"):
        a.attribute("tiny-ft", "q?", "answer")
    v.card["adapter_hash"] = "0x" + "22" * 32
    v.card["datanets"][0]["root"] = "0x" + "cd" * 32
    with pytest.raises(AttributionError, match="snapshots"):
        a.attribute("tiny-ft", "q?", "answer")
    assert {p.name: p.read_bytes() for p in idx.iterdir()} == before  # nothing overwritten


def test_index_build_resumes_after_interruption(att_studio, monkeypatch) -> None:
    import numpy as np

    events = []
    att_studio.events.subscribe(lambda ev: events.append(ev))
    full = _index(att_studio)
    v = att_studio.models.versions["tiny-ft"]
    idx = v.dir / "attribution" / "gradient"
    want = np.load(idx / "grads.npy")
    assert any(e.kind == "progress" for e in events)
    shutil.rmtree(v.dir / "attribution")

    class CancelAfter:
        def __init__(self, n: int) -> None:
            self.n = n

        def check(self) -> None:
            self.n -= 1
            if self.n < 0:
                raise Cancelled("Cancelled.")

    with pytest.raises(Cancelled):
        att_studio.attribution.build_index("tiny-ft", config=CFG, cancel=CancelAfter(3))
    building = v.dir / "attribution" / "gradient.building"
    done = sorted(p.name for p in building.glob("chunk_*.npz"))
    assert done and len(done) < 4 and not idx.exists()
    before = {p: ((st := (building / p).stat()).st_ino, st.st_mtime_ns) for p in done}

    class Watch:
        """A cancel token that never cancels: at the resumed build's first check it looks at the
        chunks the interrupted build had finished."""

        def __init__(self) -> None:
            self.seen: dict[str, tuple[int, int]] | None = None

        def check(self) -> None:
            if self.seen is None:
                self.seen = {
                    p: ((st := (building / p).stat()).st_ino, st.st_mtime_ns)
                    for p in done
                    if (building / p).exists()
                }

    from studio.attribution import gradients

    computed: list[int] = []  # records whose gradients the resumed build computed
    real = gradients.batch_gradients

    def counting(model, mods, batch, *a, **kw):  # type: ignore[no-untyped-def]
        computed.append(len(batch))
        return real(model, mods, batch, *a, **kw)

    monkeypatch.setattr(gradients, "batch_gradients", counting)
    watch = Watch()
    again = att_studio.attribution.build_index("tiny-ft", config=CFG, cancel=watch)
    assert again == full
    assert watch.seen == before  # the finished chunks were neither removed nor rewritten
    # only the records of the missing chunks were computed (18 records in chunks of 5)
    assert sum(computed) == 18 - 5 * len(done)
    assert np.array_equal(np.load(idx / "grads.npy"), want)
    assert not building.exists()
    # Re-running is safe and cheap: an up-to-date index is kept, unless forced.
    assert _index(att_studio) == {**full, "reused": True}
    forced = att_studio.attribution.build_index("tiny-ft", config=CFG, force=True)
    assert forced == full


def test_verify_rejects_non_reports(att_studio, tmp_path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{}")
    with pytest.raises(StudioError, match="not an attribution report"):
        att_studio.attribution.verify(p)
    with pytest.raises(StudioError, match="No report"):
        att_studio.attribution.verify(tmp_path / "missing.json")


def test_verify_tells_float_noise_from_tampering(att_studio) -> None:
    from studio.attribution.report import compute_hash

    _index(att_studio)
    rep = att_studio.attribution.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    noisy = json.loads(json.dumps(rep))
    noisy["top_records"][1]["score"] *= 1 + 1e-6  # what another CPU's last bits could do
    noisy["report_hash"] = compute_hash(noisy)
    res = att_studio.attribution.verify(noisy)
    assert not res["match"] and res["match_within_tolerance"]
    assert res["float_noise"] == ["top_records[1].score"]
    noisy["top_records"][1]["score"] *= 2  # a real change
    noisy["report_hash"] = compute_hash(noisy)
    res = att_studio.attribution.verify(noisy)
    assert not res["match"] and not res["match_within_tolerance"]
    # One basis point moved between two payees (the sum stays 10,000): a different payout.
    moved = json.loads(json.dumps(rep))
    moved["weights"][0]["bps"] -= 1
    moved["weights"][-1]["bps"] += 1
    moved["report_hash"] = compute_hash(moved)
    res = att_studio.attribution.verify(moved)
    assert not res["match"] and not res["match_within_tolerance"]
    assert "weights[0].bps" in res["differences"] and res["float_noise"] == []


def test_sketched_index_keeps_the_ranking(att_studio) -> None:
    """Wide gradients are stored whitened + count-sketched; scores stay close to the exact ones."""
    import numpy as np

    a = att_studio.attribution
    _index(att_studio)
    exact = a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=18)
    # (the unsketched index's damping, so that only the sketch differs)
    small = GradientConfig(
        proj_dim=8, chunk_size=5, batch_size=4, compress_dim=64, sketch_damping=0.1
    )
    res = a.build_index("tiny-ft", config=small)
    assert res["dim"] == 128  # lora_B only: 2 layers x (q, v) x rank 4 x 8 projected outputs
    gi = a._gradient_index(a.model_info("tiny-ft"))
    assert gi.meta["sketch"] and gi.grads.shape == (18, 64)
    sk = a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=18)
    assert sk["top_records"][0]["record_id"] == 1
    e = {r["record_id"]: r["score"] for r in exact["top_records"]}
    s = {r["record_id"]: r["score"] for r in sk["top_records"]}
    common = sorted(set(e) & set(s))
    assert np.corrcoef([e[i] for i in common], [s[i] for i in common])[0, 1] > 0.8


def test_a_sketched_index_takes_its_own_damping_and_the_report_names_it(att_studio) -> None:
    a = att_studio.attribution
    wide = GradientConfig(proj_dim=8, chunk_size=5, batch_size=4, compress_dim=64)
    a.build_index("tiny-ft", config=wide)
    rep = a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    assert rep["method"]["params"]["gradient"]["damping"] == wide.sketch_damping == 10.0
    a.build_index("tiny-ft", config=GradientConfig(proj_dim=8, chunk_size=5, batch_size=4))
    rep = a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    assert rep["method"]["params"]["gradient"]["damping"] == 0.1  # not sketched: as before
    # An index built before sketch_damping existed (one damping for both) is still current.
    import json

    meta_file = a.gradient_dir(a.model_info("tiny-ft")) / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["identity"]["config"]["sketch_damping"]
    meta_file.write_text(json.dumps(meta))
    gi = a._gradient_index(a.model_info("tiny-ft"))
    assert gi.config.sketch_damping == gi.config.damping == 0.1
    assert a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=1)["top_records"]


def test_both_lora_matrices_option_and_format_version(att_studio) -> None:
    """lora_params="AB" indexes lora_A too (twice the width here); an index written by an older
    format is refused with a rebuild hint rather than misread."""
    import json

    from studio.attribution.index import FORMAT, GradientIndex

    a = att_studio.attribution
    cfg = GradientConfig(proj_dim=8, chunk_size=5, batch_size=4, lora_params="AB")
    assert a.build_index("tiny-ft", config=cfg)["dim"] == 256
    rep = a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=1)
    assert rep["top_records"][0]["record_id"] == 1
    path = a.gradient_dir(a.model_info("tiny-ft"))
    gi = GradientIndex.open(path)
    assert gi.meta["format"] == FORMAT and all(m.use_a for m in gi.module_shapes)
    meta = json.loads((path / "meta.json").read_text())
    meta["format"] = "openledger.gradient-index/1"
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(AttributionError, match="another version"):
        GradientIndex.open(path)


def test_exact_fisher_block_curvature_option(att_studio) -> None:
    cfg = GradientConfig(proj_dim=8, chunk_size=5, batch_size=4, curvature="fisher")
    att_studio.attribution.build_index("tiny-ft", config=cfg)
    rep = att_studio.attribution.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=1)
    assert rep["method"]["params"]["gradient"]["curvature"] == "fisher"
    assert rep["top_records"][0]["record_id"] == 1


def test_an_index_for_other_layers_is_refused_with_a_rebuild_hint(att_studio) -> None:
    import numpy as np

    from studio.attribution.index import GradientIndex

    seen = []
    att_studio.events.subscribe(lambda ev: seen.append(ev))
    _index(att_studio)
    # Progress after every batch of 4 and every chunk of 5, in records, over the 18 records.
    steps = [(e.step, e.total, e.message) for e in seen if e.kind == "progress"][1:]
    assert [s for s, _, _ in steps] == [4, 5, 5, 9, 10, 10, 14, 15, 15, 18, 18]
    assert {(t, m) for _, t, m in steps} == {(18, "records")}
    a = att_studio.attribution
    gi = GradientIndex.open(a.gradient_dir(a.model_info("tiny-ft")))
    # The stored layout the module docstring promises (what a reader of the files relies on).
    assert np.load(gi.path / "scales.npy").dtype == np.float32 and gi.grads.dtype == np.float16
    mods = [SimpleNamespace(name=row[0], dim=row[1]) for row in gi.meta["modules"]]
    gi.check_modules(mods)  # the layers it was built for
    with pytest.raises(AttributionError, match="other LoRA layers") as e:
        gi.check_modules(mods[:-1])
    assert e.value.hint == "Rebuild it: studio attribution index MODEL."
    # The refusal names both sides of every snapshot that differs, in the user's words.
    have = gi.meta["identity"]
    two = [
        dict(have["snapshots"][0], root="0x" + "cd" * 32),
        dict(datanet="b", version=2, root="0x" + "ef" * 32),
    ]
    with pytest.raises(AttributionError) as e:
        gi.check_identity({**have, "snapshots": two})
    assert e.value.message == (
        "The gradient index was built for another snapshots [notes@1 0xababababab…] (model "
        "trained on [notes@1 0xcdcdcdcdcd…, b@2 0xefefefefef…]), so it cannot be used."
    )
    assert e.value.hint == "Rebuild it for this model: studio attribution index MODEL."


def test_nothing_to_index_is_refused_before_any_folder_exists(tmp_path) -> None:
    from studio.attribution.index import build_gradient_index

    ident = {"config": CFG.to_dict()}
    with pytest.raises(AttributionError) as e:
        build_gradient_index(tmp_path / "gradient", None, [], ident, pad_id=0)
    assert (e.value.message, e.value.hint) == (
        "No training records to index.",
        "Check the model's Datanet snapshots.",
    )
    assert list(tmp_path.iterdir()) == []
