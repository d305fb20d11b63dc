"""`studio attribute` / `studio attribution index|verify` through the real CLI parser."""

from __future__ import annotations

import json

import pytest
from attr_fixtures import CANARY


@pytest.fixture
def cli_fakes(att_studio, monkeypatch):
    """Every Studio the CLI creates gets the same fake models/datanets as att_studio."""
    from studio.app import Studio

    models, datanets = att_studio.models, att_studio.datanets
    monkeypatch.setattr(Studio, "models", property(lambda self: models))
    monkeypatch.setattr(Studio, "datanets", property(lambda self: datanets))
    return att_studio


def test_attribute_index_verify_cli(cli, cli_fakes, tmp_path) -> None:
    rc, out, err = cli(
        "attribute", "tiny-ft", "--prompt", "What did the keeper log?", "--output", CANARY
    )
    # No index yet: the first call builds it, saying so, and then attributes.
    assert rc == 0, err
    assert "no attribution index yet: building it now" in err and "Report hash" in out
    rc, out, err = cli("attribution", "index", "tiny-ft", "--proj-dim", "8", "--json")
    assert rc == 0, err
    assert json.loads(out)["records"] == 18
    report_path = tmp_path / "rep.json"
    rc, out, err = cli(
        "attribute",
        "tiny-ft",
        "--prompt",
        "What did the keeper log?",
        "--output",
        CANARY,
        "--method",
        "hybrid",
        "--top",
        "3",
        "--json",
        "--save",
        str(report_path),
    )
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["report_hash"] == json.loads(report_path.read_text())["report_hash"]
    assert sum(w["bps"] for w in rep["weights"]) == 10_000
    assert set(rep["weights"][0]) == {"contributor", "bps"}
    rc, out, err = cli(
        "attribute",
        "tiny-ft",
        "--prompt",
        "What did the keeper log?",
        "--output",
        CANARY,
        "--method",
        "hybrid",
        "--top",
        "3",
    )
    assert rc == 0 and "Top contributions" in out and "bps" in out and rep["report_hash"] in out
    rc, out, err = cli("attribution", "verify", str(report_path))
    assert rc == 0 and out.startswith("match"), err
    tampered = json.loads(report_path.read_text())
    tampered["top_records"][0]["score"] = 123.0
    report_path.write_text(json.dumps(tampered))
    rc, out, err = cli("attribution", "verify", str(report_path))
    assert rc == 1 and "mismatch" in err and "top_records[0].score" in err and "report_hash" in err
    rc, out, err = cli("attribute", "tiny-ft", "--prompt", "q", "--output", "")
    assert rc == 1 and "empty" in err


def test_attribute_cli_generates_and_signs_with_the_real_wallet(
    cli, cli_fakes, tmp_path, monkeypatch
) -> None:
    """No --output: the model's answer (here the fake models' fixed one) is attributed; --sign
    uses the real wallet's keystore (unlocked with --password-file), and verify recovers it."""
    import studio.chain.keystore as ks

    monkeypatch.setattr(ks, "SCRYPT_N", 2**10)
    pw = tmp_path / "pw.txt"
    pw.write_text("correct horse battery staple\n")
    rc, out, err = cli("wallet", "create", "--password-file", str(pw), "--json")
    assert rc == 0, err
    address = json.loads(out)["address"]
    assert cli("attribution", "index", "tiny-ft", "--proj-dim", "8")[0] == 0
    path = tmp_path / "gen.json"
    rc, out, err = cli(
        "attribute", "tiny-ft", "--prompt", "What did the keeper log?", "--max-new-tokens", "12",
        "--sign", "--password-file", str(pw), "--json", "--save", str(path),
    )  # fmt: skip
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["output"]["generated"] is True and rep["output"]["text"].strip()
    assert rep["output"]["text"] == "The keeper logged tide seventeen at dusk"  # the fake's answer
    assert rep["signature"]["signer"] == address
    rc, out, err = cli("attribution", "verify", str(path))
    assert rc == 0 and "signature valid" in out, (out, err)
