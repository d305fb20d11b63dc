"""`studio model register` for real: a tiny model trained on a published Datanet snapshot,
registered from the studio against a real anvil, then read back from the ModelRegistry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chain_kit import Anvil
from test_publish import _attach, _make_datanet

from studio.chain import contracts, datanets_onchain
from studio.chain.contributions import as_bytes32
from studio.chain.devnet import dev_account

FAST = dict(max_steps=2, batch_size=2, max_length=64, checkpoint_every=2, val_split=0.0)


def test_trained_model_is_registered_and_readable_on_chain(
    studio: Any, anvil: Anvil, tmp_path: Path
) -> None:
    _attach(studio, anvil)
    _make_datanet(studio, tmp_path, per=2)
    datanets_onchain.publish(studio, dev_account(0), "field-notes")
    mid = studio.models.prepare(base="tiny", datanets=["field-notes"], settings=FAST, name="reg")
    studio.models.run_job(mid)
    card = studio.models.get(mid).card
    owner = dev_account(4)

    res = studio.models.register(mid, owner, price_wei=5 * 10**17)
    oid = res["onchain_id"]
    mr = contracts.contract(studio.chain, "ModelRegistry")
    m = mr.functions.getModel(oid).call()
    assert m[0] == owner.address
    assert list(m[1:4]) == [
        as_bytes32(card[k]) for k in ("base_model_hash", "adapter_hash", "config_hash")
    ]
    assert m[5] == 5 * 10**17 and not m[7]
    did = datanets_onchain.onchain_id(studio, "field-notes")
    assert [tuple(x) for x in mr.functions.getTrainingSnapshots(oid).call()] == [(did, 1)]
    assert studio.models.status(mid)["registration"]["onchain_id"] == oid
    # Registering again sends nothing: the same on-chain id, no new model.
    count = mr.functions.modelCount().call()
    again = studio.models.register(mid, owner, price_wei=5 * 10**17)
    assert again["onchain_id"] == oid and not again["changed"]
    assert mr.functions.modelCount().call() == count
