"""Three nodes and a validator on one anvil. The validator holds no copy of the model: it fetches
each adapter from the serving node, checks it against the hash registered on chain, installs it
in its own data home and re-runs the report with it, by the exact method (the version allows it).
An honest report matches and finalises (the contributors are paid); a tampered report is
challenged with the bond, upheld, the lying node slashed and the payer refunded; a node that
serves other adapter bytes than it registered is refused and never challenged on them."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import openai

from studio.attribution import report as R
from studio.chain import contracts, ledger, staking
from studio.chain.devnet import dev_account
from studio.node.config import NodeConfig
from studio.node.service import Node
from studio.node.validator import Validator

SAMPLE = {"temperature": 0.8, "seed": 3}


def _copy_home(src: Any, dest: Path, key_index: int, anvil: Any) -> Any:
    from eth_account import Account

    from studio.app import Studio
    from studio.chain.client import ChainClient

    src.store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copytree(src.paths.home, dest)
    s = Studio(dest)
    client = ChainClient.for_url(s, anvil.url, anvil.chain_id)
    contracts.ensure_deployed(client, allow_deploy=True)
    s.__dict__["chain"] = client
    addr = s.wallet.import_private_key(
        bytes(Account.from_key(anvil.keys[key_index]).key), password_file=src.node_password_file
    )
    s.wallet.set_active(addr)
    return s


def _wait(studio: Any, iid: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = studio.store.one("SELECT status FROM node_served WHERE inference_id = ?", (iid,))
        if row and row["status"] == "recorded":
            return
        time.sleep(0.1)
    raise AssertionError(f"inference {iid} never recorded")


def _forget_models(s: Any) -> None:
    """The validator's home keeps the Datanet but has no copy of any fine-tuned version."""
    shutil.rmtree(s.paths.models / "ft")  # (the copied rows still name the first home's folders)
    s.store.execute("DELETE FROM onchain_models")
    s.store.execute("DELETE FROM models")


def _tampered_adapter(node: Any, model: str, where: Path) -> None:
    """From now on `node` serves other weights for `model` than the ones it registered."""
    mv = node.hosted()[model]["version"]
    shutil.copytree(mv.adapter_dir, where)
    w = where / "adapter_model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0x01
    w.write_bytes(bytes(data))
    node.hosted()[model]["version"] = dataclasses.replace(mv, adapter_dir=where)


def test_honest_finalises_and_tampered_is_slashed(
    paid_studio: Any, anvil: Any, tmp_path: Path, caplog: Any
) -> None:
    a = paid_studio
    b = _copy_home(a, tmp_path / "node-b", 7, anvil)
    c = _copy_home(a, tmp_path / "node-c", 9, anvil)
    v = _copy_home(a, tmp_path / "validator", 8, anvil)
    _forget_models(v)
    pw = a.node_password_file
    staking.deposit(b, dev_account(7), 1_000 * 10**18, "node")
    staking.deposit(c, dev_account(9), 1_000 * 10**18, "node")
    staking.deposit(v, dev_account(8), 500 * 10**18, "validator")
    # auto: each node attributes exactly, as the version allows it (a replay record, tiny model).
    cfg = dict(
        api="127.0.0.1:0",
        password_file=pw,
        poll_s=0.1,
        payment_wait_s=2.0,
        attribution_method="auto",
    )
    node_a = Node(a, NodeConfig(**cfg)).start()
    node_b = Node(b, NodeConfig(**cfg)).start()
    node_c = Node(c, NodeConfig(**cfg)).start()
    honest = node_b._attribute

    def tampered(job: Any, text: str) -> Any:
        rep = honest(job, text)
        rep.pop("signature", None)
        # Everything to one bound contributor: a payee (so the ledger takes it), but not what a
        # re-run of the report gives.
        rep["weights"] = [{"contributor": dev_account(2).address, "bps": 10_000}]
        rep["report_hash"] = R.compute_hash(rep)  # self-consistent, but not what a re-run gives
        return rep

    node_b._attribute = tampered  # type: ignore[method-assign]
    try:
        mid = int(
            a.store.one("SELECT onchain_id FROM onchain_models WHERE model_id = 'notes-a'")[
                "onchain_id"
            ]
        )
        payer = dev_account(6)
        iid_a = ledger.pay_for_inference(a, payer, mid, node=node_a.address)["inference_id"]
        iid_b = ledger.pay_for_inference(a, payer, mid, node=node_b.address)["inference_id"]
        iid_c = ledger.pay_for_inference(a, payer, mid, node=node_c.address)["inference_id"]
        for node, iid in ((node_a, iid_a), (node_b, iid_b), (node_c, iid_c)):
            client = openai.OpenAI(base_url=node.url + "/v1", api_key="x", max_retries=0)
            client.completions.create(
                model="notes-a",
                prompt="The keeper",
                max_tokens=6,
                extra_body={"inference_id": iid, **SAMPLE},
            )
        _wait(a, iid_a)
        _wait(b, iid_b)
        _wait(c, iid_c)
        _tampered_adapter(node_c, "notes-a", tmp_path / "tampered-adapter")

        vcfg = NodeConfig(
            api="127.0.0.1:0",
            password_file=pw,
            require_payment=False,
            poll_s=0.1,
            peers=[node_a.url, node_b.url, node_c.url],
        )
        node_v = Node(v, vcfg, chain=True).start(serve_api=False)
        try:
            node_v.follower.sync()
            with caplog.at_level(logging.INFO, logger="studio.node.validator"):
                verdicts = {r["inference_id"]: r for r in Validator(node_v).check_once()}
            assert verdicts[iid_a]["verdict"] == "match", verdicts[iid_a]
            assert verdicts[iid_b]["verdict"] == "mismatch" and verdicts[iid_b]["challenge_tx"]
            assert verdicts[iid_a]["method"] == verdicts[iid_b]["method"] == "exact"
            assert ledger.inference(v, iid_b)["status"] == "challenged"
            # Node C's report is honest, but it serves other adapter bytes than it registered:
            # refused, logged, nothing installed from them, no challenge.
            assert verdicts[iid_c]["verdict"] == "adapter_refused", verdicts[iid_c]
            assert "registered on chain" in verdicts[iid_c]["detail"]
            assert verdicts[iid_c]["challenge_tx"] is None and verdicts[iid_c]["method"] is None
            assert ledger.inference(v, iid_c)["status"] == "recorded"
            refused = [r for r in caplog.records if "adapter_refused" in r.getMessage()]
            assert refused and refused[0].levelno == logging.ERROR
            assert Validator(node_v).check_once() == [], "each record is checked once"
            rows = {r["inference_id"]: r for r in v.store.query("SELECT * FROM node_validations")}
            assert rows[iid_b]["verdict"] == "mismatch" and rows[iid_b]["node"] == node_b.address
            assert rows[iid_a]["method"] == "exact" and rows[iid_c]["method"] is None
            # The one adapter installed is the registered one, fetched (the validator had none).
            registered = a.models.get("notes-a").card["adapter_hash"].removeprefix("0x")
            installed = list((v.paths.home / "node" / "adapters").iterdir())
            assert [p.name.split("-")[0] for p in installed] == [registered]
            assert rows[iid_a]["adapter_hash"].endswith(registered)
            got = installed[0] / "adapter" / "adapter_model.safetensors"
            assert hashlib.sha256(got.read_bytes()).hexdigest() == registered
            assert (installed[0] / "replay" / "replay.json").is_file()
            metrics = node_v.metrics.render().decode()
            assert 'studio_node_validations_total{verdict="mismatch"} 1.0' in metrics
            assert 'studio_node_validations_total{verdict="adapter_refused"} 1.0' in metrics
            assert 'studio_node_validation_reruns_total{method="exact"} 2.0' in metrics

            # The arbiter upholds the challenge: node B is slashed, the payer gets the fee back.
            before_pay = staking.claimable(a, payer.address)
            res = ledger.resolve(a, dev_account(0), iid_b, upheld=True)
            assert res["slashed_wei"] == contracts.DEVNET_PARAMS["slash_amount"]
            assert staking.position(a, node_b.address, "node")["active_wei"] == 900 * 10**18
            assert staking.claimable(a, payer.address) - before_pay == 10**18
            # The honest one finalises after the window; its contributors are paid.
            anvil.increase_time(contracts.DEVNET_PARAMS["challenge_window_s"] + 1)
            ledger.finalize(a, payer, iid_a)
            import json

            rep = json.loads(
                a.store.one("SELECT report FROM node_reports WHERE inference_id = ?", (iid_a,))[
                    "report"
                ]
            )
            assert all(staking.claimable(a, w["contributor"]) > 0 for w in rep["weights"])
            node_v.follower.sync()
            idx = node_v.follower.index
            assert idx.inference(iid_a)["status"] == "finalized"
            assert idx.inference(iid_b)["status"] == "voided"
            slashed = v.store.one(
                "SELECT slashed_wei FROM node_stakes WHERE account = ? AND role = 1",
                (node_b.address,),
            )
            assert int(slashed["slashed_wei"]) == contracts.DEVNET_PARAMS["slash_amount"]
        finally:
            node_v.stop()
    finally:
        node_a.stop()
        node_b.stop()
        node_c.stop()
        b.close()
        c.close()
        v.close()
