"""The committed contract artifacts match contracts/ (a stale artifact fails here)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from studio.chain import contracts as C


def test_committed_artifacts_are_fresh() -> None:
    reasons = C.stale_reasons()
    assert not reasons, "stale contract artifacts — run `make contracts`:\n" + "\n".join(reasons)
    for name in (*C.CORE_CONTRACTS, "bench/NaiveContributions", "test/ReentrantReceiver"):
        art = C.load_artifact(name)
        assert (
            art["abi"] and art["bytecode"].startswith("0x6") and len(art["deployedBytecode"]) > 100
        )
        assert art["solc_version"].startswith(C.pinned_versions()["solc"] + "+")
        assert art["settings"]["evmVersion"] == "cancun" and art["settings"]["optimizer"]["enabled"]


def _copy_tree(tmp: Path) -> tuple[Path, Path, Path]:
    src, art = tmp / "contracts", tmp / "artifacts"
    shutil.copytree(C.CONTRACTS_DIR, src)
    shutil.copytree(C.ARTIFACTS_DIR, art)
    pkg = tmp / "package.json"
    shutil.copy(C.PACKAGE_JSON, pkg)
    assert C.stale_reasons(src, art, pkg) == []
    return src, art, pkg


def test_edited_source_makes_artifacts_stale(tmp_path: Path) -> None:
    src, art, pkg = _copy_tree(tmp_path)
    f = src / "Staking.sol"
    f.write_text(f.read_text() + "\n// an edit\n")
    reasons = C.stale_reasons(src, art, pkg)
    assert any(r.startswith("Staking: source_hash") for r in reasons)


def test_compiler_pin_new_or_missing_contract_make_artifacts_stale(tmp_path: Path) -> None:
    src, art, pkg = _copy_tree(tmp_path)
    doc = json.loads(pkg.read_text())
    doc["devDependencies"]["@openzeppelin/contracts"] = "5.0.0"
    pkg.write_text(json.dumps(doc))
    assert len(C.stale_reasons(src, art, pkg)) >= 4
    shutil.copy(C.PACKAGE_JSON, pkg)
    (src / "Extra.sol").write_text("pragma solidity ^0.8.24;\ncontract Extra {}\n")
    assert "Extra: no artifact" in C.stale_reasons(src, art, pkg)
    (src / "Extra.sol").unlink()
    (art / "ModelRegistry.json").unlink()
    assert "ModelRegistry: no artifact" in C.stale_reasons(src, art, pkg)


@pytest.mark.skipif(
    shutil.which("node") is None or not (C.REPO / "node_modules" / "solc").exists(),
    reason="needs node + npm packages (make setup)",
)
def test_recompiling_reproduces_the_committed_bytecode(tmp_path: Path) -> None:
    sys.path.insert(0, str(C.REPO / "scripts"))
    try:
        import compile_contracts
    finally:
        sys.path.pop(0)
    written = compile_contracts.compile_all(out_dir=tmp_path)
    assert set(C.CORE_CONTRACTS) <= set(written)
    for name in written:
        fresh = json.loads((tmp_path / f"{name}.json").read_text())
        assert fresh["bytecode"] == C.load_artifact(name)["bytecode"], name
