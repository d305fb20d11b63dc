"""Node test fixtures: one real anvil for the node tests (session), reverted to a snapshot after each
test, and a Studio wired to it with the four contracts deployed through the studio's own pipeline.
Helpers live in node_kit.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
for extra in (HERE.parent / "chain", HERE.parent / "train"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from chain_kit import Anvil, started_anvil  # noqa: E402


@pytest.fixture(scope="session")
def node_anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    with started_anvil(tmp_path_factory.mktemp("anvil") / "anvil.log") as node:
        yield node


@pytest.fixture
def anvil(node_anvil: Anvil) -> Iterator[Anvil]:
    snap = node_anvil.rpc("evm_snapshot")
    try:
        yield node_anvil
    finally:
        node_anvil.rpc("evm_revert", snap)


@pytest.fixture
def chain_studio(studio: Any, anvil: Anvil) -> Any:
    """The test's Studio on the anvil (network `custom`), contracts deployed by the pipeline."""
    from studio.chain import contracts
    from studio.chain.client import ChainClient

    client = ChainClient.for_url(studio, anvil.url, anvil.chain_id)
    contracts.ensure_deployed(client, allow_deploy=True)
    studio.__dict__["chain"] = client
    return studio


NOTES = {
    1: "The lighthouse keeper logged the tide at dawn; the brass gauge read four feet.",
    2: "Sourdough starter doubles in six hours when fed equal weights of rye flour and water.",
    3: "Bees cluster in winter, shivering their wing muscles to keep the queen warm.",
}


@pytest.fixture(scope="session")
def served_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home with a Datanet (three contributors, one snapshot) and two tiny LoRA models
    fine-tuned on it (two adapters on one base), built once per session."""
    import json
    import os

    import torch

    from studio.app import Studio
    from studio.chain.devnet import dev_account

    torch.set_num_threads(1)
    home = tmp_path_factory.mktemp("served") / "home"
    old = os.environ.get("STUDIO_HOME")
    os.environ["STUDIO_HOME"] = str(home)
    try:
        with Studio(home) as s:
            dn = s.datanets
            dn.create("notes", summary="notes", license="CC-BY-4.0")
            for who, text in NOTES.items():
                f = home.parent / f"notes-{who}.jsonl"
                rows = [{"text": f"{text} Entry {i}: day {i * 7 + who}."} for i in range(4)]
                f.write_text("".join(json.dumps(r) + "\n" for r in rows))
                dn.add_files("notes", [f], contributor=dev_account(who).address)
            dn.curate("notes", accept_all=True, min_score=0.0)
            dn.snapshot("notes")
            settings = dict(
                max_steps=4,
                batch_size=2,
                max_length=64,
                checkpoint_every=4,
                learning_rate=1e-2,
                warmup_ratio=0.0,
                val_split=0.0,
            )
            for name, seed in (("notes-a", 1), ("notes-b", 2)):
                mid = s.models.prepare(
                    base="tiny", datanets=["notes"], settings={**settings, "seed": seed}, name=name
                )
                s.models.run_job(mid)
    finally:
        if old is None:
            os.environ.pop("STUDIO_HOME", None)
        else:
            os.environ["STUDIO_HOME"] = old
    return home


@pytest.fixture
def served_studio(served_template: Path, studio_home: Path) -> Iterator[Any]:
    import shutil

    from studio.app import Studio

    shutil.copytree(served_template, studio_home, dirs_exist_ok=True)
    s = Studio(studio_home)
    yield s
    s.close()


PASSWORD = "node password for tests"


@pytest.fixture
def paid_studio(
    served_studio: Any, anvil: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """served_studio on the test anvil: contracts deployed, the Datanet published, both models
    registered at 1 OPEN, and the node's own account (dev account 5) in the wallet and staked."""
    from eth_account import Account

    from studio.chain import contracts, datanets_onchain, keystore, staking
    from studio.chain.client import ChainClient
    from studio.chain.devnet import dev_account

    monkeypatch.setattr(keystore, "SCRYPT_N", 2**10)
    s = served_studio
    client = ChainClient.for_url(s, anvil.url, anvil.chain_id)
    contracts.ensure_deployed(client, allow_deploy=True)
    s.__dict__["chain"] = client
    # The contributors bind their records (only payees of a model's snapshots can be paid).
    signers = {dev_account(w).address: dev_account(w) for w in NOTES}
    datanets_onchain.publish(s, dev_account(0), "notes", signers=signers)
    for mid in ("notes-a", "notes-b"):
        s.models.register(mid, dev_account(4), price_wei=10**18)
    pw = tmp_path / "node-password"
    pw.write_text(PASSWORD + "\n")
    key = Account.from_key(anvil.keys[5]).key
    addr = s.wallet.import_private_key(bytes(key), password_file=str(pw))
    s.wallet.set_active(addr)
    staking.deposit(s, dev_account(5), 1_000 * 10**18, "node")
    s.node_password_file = str(pw)
    # CLI subprocesses reach the same anvil as the `custom` network.
    monkeypatch.setenv("STUDIO_NETWORK", "custom")
    monkeypatch.setenv("STUDIO_RPC_URL", anvil.url)
    monkeypatch.setenv("STUDIO_CHAIN_ID", str(anvil.chain_id))
    return s
