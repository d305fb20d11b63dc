"""The real pieces together: the sample Datanet, a tiny model fine-tuned by the ModelFactory,
then index → attribute → verify through the Studio facade."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REPO_SAMPLE = REPO / "resources" / "sample-datanet"
QUESTION = "What does the keeper of Skerry Point do when the Hollow Bell rock goes under?"
ANSWER = "When the Hollow Bell goes under, the keeper rings the fog bell twice at dusk"


@pytest.fixture
def trained(studio):
    return _train(studio, learning_rate=1e-2)


def _train(studio, learning_rate, steps=4):
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
            max_steps=steps,
            batch_size=4,
            max_length=96,
            checkpoint_every=100,
            learning_rate=learning_rate,
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


def test_attribute_cli_on_a_trained_model_given_generated_and_signed(
    trained, cli, tmp_path, monkeypatch
) -> None:
    """`studio attribute` through the CLI on the real fine-tune: a given answer, a report signed by
    the real wallet (keystore + password file) and verified, the same hash from other processes
    with other thread counts, and a generated answer (this tiny model answers only whitespace,
    which is refused in one line; a generated report is covered in test_attribution_cli)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    import studio.chain.keystore as ks

    monkeypatch.setattr(ks, "SCRYPT_N", 2**10)  # the keystore's cost, not what is tested here
    studio, model_id, manifest = trained
    keeper = manifest["files"][0]["contributor"]
    pw = tmp_path / "pw.txt"
    pw.write_text("correct horse battery staple\n")
    rc, out, err = cli("wallet", "create", "--password-file", str(pw), "--json")
    assert rc == 0, err
    address = json.loads(out)["address"]
    rc, out, err = cli("attribution", "index", model_id, "--proj-dim", "16", "--json")
    assert rc == 0, err

    given = tmp_path / "given.json"
    rc, out, err = cli(
        "attribute", model_id, "--prompt", QUESTION, "--output", ANSWER, "--method", "hybrid",
        "--top", "5", "--json", "--save", str(given),
    )  # fmt: skip
    assert rc == 0, err
    rep = json.loads(out)
    assert rep == json.loads(given.read_text())
    assert rep["output"] == {**rep["output"], "text": ANSWER, "generated": False}
    assert rep["weights"][0]["contributor"] == keeper and "signature" not in rep
    assert sum(w["bps"] for w in rep["weights"]) == 10_000

    signed = tmp_path / "signed.json"
    rc, out, err = cli(
        "attribute", model_id, "--prompt", QUESTION, "--output", ANSWER, "--method", "hybrid",
        "--top", "5", "--sign", "--password-file", str(pw), "--json", "--save", str(signed),
    )  # fmt: skip
    assert rc == 0, err
    sig = json.loads(out)
    assert {k: v for k, v in sig.items() if k != "signature"} == rep  # signing changes nothing else
    msg = encode_defunct(primitive=bytes.fromhex(sig["report_hash"][2:]))
    assert sig["signature"]["signer"] == address
    assert Account.recover_message(msg, signature=sig["signature"]["signature"]) == address

    rc, out, err = cli("attribute", model_id, "--prompt", QUESTION, "--max-new-tokens", "8")
    assert rc == 1 and "output is empty" in err and err.count("\n") == 1, (out, err)
    # Another process, with another torch thread count (as a validator's machine would run it):
    # the same report, byte for byte.
    for threads in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-m", "studio", "attribute", model_id, "--prompt", QUESTION,
             "--output", ANSWER, "--method", "hybrid", "--top", "5", "--json"],
            env={**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                 "STUDIO_HOME": str(studio.paths.home), "PYTHONPATH": str(REPO)},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout)["report_hash"] == rep["report_hash"], threads
    rc, out, err = cli("attribution", "verify", str(signed))
    assert rc == 0 and out.startswith("match") and "signature valid" in out, (out, err)
    rc, out, err = cli("attribute", model_id, "--prompt", QUESTION, "--output", ANSWER, "--sign",
                       "--password-file", str(tmp_path / "missing.txt"))  # fmt: skip
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err


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
