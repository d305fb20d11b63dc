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
