"""The real pieces together: the sample Datanet, a tiny model fine-tuned by the ModelFactory,
then index → attribute → verify through the Studio facade."""

from __future__ import annotations

import json

import pytest

REPO_SAMPLE = (
    __import__("pathlib").Path(__file__).resolve().parents[2] / "resources" / "sample-datanet"
)
QUESTION = "What does the keeper of Skerry Point do when the Hollow Bell rock goes under?"
ANSWER = "When the Hollow Bell goes under, the keeper rings the fog bell twice at dusk"


@pytest.fixture
def trained(studio):
    manifest = json.loads((REPO_SAMPLE / "manifest.json").read_text())
    name = manifest["name"]
    dn = studio.datanets
    dn.create(
        name, summary=manifest.get("summary", ""), license=manifest.get("license", "CC-BY-4.0")
    )
    for f in manifest["files"]:
        dn.add_files(name, [REPO_SAMPLE / f["file"]], contributor=f["contributor"])
    dn.curate(name, accept_all=True, min_score=0.0)
    snap = dn.snapshot(name)
    model_id = studio.models.prepare(
        base="tiny",
        datanets=[f"{name}@{snap['version']}"],
        name="attr-it",
        settings=dict(
            max_steps=4,
            batch_size=4,
            max_length=96,
            checkpoint_every=100,
            learning_rate=1e-2,
            warmup_ratio=0.0,
            val_split=0.1,
        ),
    )
    studio.models.run_job(model_id)
    return studio, model_id, manifest


def test_index_attribute_verify_with_the_real_factory(trained, tmp_path) -> None:
    from studio.attribution.gradients import GradientConfig

    studio, model_id, manifest = trained
    att = studio.attribution
    seen = []
    studio.events.subscribe(seen.append)
    first = att.attribute(model_id, QUESTION, ANSWER)  # no index yet: built on first use
    assert first["method"]["name"] == "gradient"
    assert any("no attribution index yet" in (e.message or "") for e in seen)
    assert att.build_index(model_id)["reused"]
    res = att.build_index(model_id, config=GradientConfig(proj_dim=16))
    card = studio.models.get(model_id).card
    trained_ids = {i for d in card["datanets"] for i in d["record_ids"]}
    assert 0 < res["records"] <= len(trained_ids)  # validation records are not indexed
    rep = att.attribute(model_id, QUESTION, ANSWER, method="hybrid", top_k=5)
    keeper = manifest["files"][0]["contributor"]
    assert rep["top_records"][0]["contributor"] == keeper
    assert any("Hollow Bell" in sp["text"] for sp in rep["top_records"][0]["spans"])
    assert rep["weights"][0]["contributor"] == keeper
    assert sum(w["bps"] for w in rep["weights"]) == 10_000
    assert rep["snapshots"][0]["root"] == card["datanets"][0]["root"]
    assert rep["model"]["adapter_hash"] == card["adapter_hash"]
    path = att.save_report(rep, tmp_path / "r.json")
    assert att.verify(path)["match"]


def test_exact_on_a_factory_trained_model(trained, tmp_path) -> None:
    """The ModelFactory writes the replay record (LoRA dropout on: its RNG is recorded too) and
    the card says the version can be attributed exactly; the exact report verifies."""
    studio, model_id, manifest = trained
    card = studio.models.get(model_id).card
    assert card["exact_attribution"]["exact"] is True
    assert "Exact attribution: yes" in (studio.models.get(model_id).dir / "card.md").read_text()
    att = studio.attribution
    assert att.choose_method(model_id) == "exact"
    rep = att.attribute(model_id, QUESTION, ANSWER, method="exact", top_k=5)
    assert rep["method"]["name"] == "exact"
    assert rep["top_records"][0]["contributor"] == manifest["files"][0]["contributor"]
    path = att.save_report(rep, tmp_path / "exact.json")
    assert att.verify(path)["match"]
