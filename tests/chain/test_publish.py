"""`datanet publish` through the studio (pipeline, store, wallet) against a real anvil."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chain_kit import Anvil

from studio.chain import contracts, datanets_onchain, ledger, staking
from studio.chain.client import ChainClient
from studio.chain.contributions import as_bytes32, license_hash
from studio.chain.devnet import dev_account

TOPICS = {
    1: "The lighthouse keeper logged the tide at dawn; the brass gauge read four feet above the old mark.",
    2: "Sourdough starter doubles in six hours when fed equal weights of rye flour and water at room heat.",
    3: "Bees cluster in winter, shivering their wing muscles to keep the queen warm near thirty-five degrees.",
}


def _write(tmp: Path, who: int, n: int, tag: str = "") -> Path:
    """A JSONL file: one record per line."""
    p = tmp / f"notes-{who}{tag}.jsonl"
    rows = [
        {"text": f"{TOPICS[who]} Entry {tag}{i}: day {i * 7 + who} was unlike the others."}
        for i in range(n)
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def _make_datanet(studio: Any, tmp: Path, name: str = "field-notes", per: int = 4) -> None:
    dn = studio.datanets
    dn.create(name, summary="notes", license="CC-BY-4.0")
    for i in (1, 2, 3):
        dn.add_files(name, [_write(tmp, i, per)], contributor=dev_account(i).address)
    dn.curate(name, accept_all=True, min_score=0.0)
    dn.snapshot(name)


def _attach(studio: Any, anvil: Anvil) -> ChainClient:
    """Point the studio at the test's anvil as a `custom` network with the contracts deployed."""
    client = ChainClient.for_url(studio, anvil.url, anvil.chain_id)
    dep = contracts.ensure_deployed(client, allow_deploy=True)
    assert set(dep["contracts"]) == set(contracts.ALL_CONTRACTS)
    studio.__dict__["chain"] = client
    return client


def _tx_count(studio: Any) -> int:
    return int(studio.store.one("SELECT COUNT(*) AS n FROM chain_tx")["n"])


def test_publish_creates_binds_and_is_idempotent(studio: Any, anvil: Anvil, tmp_path: Path) -> None:
    client = _attach(studio, anvil)
    _make_datanet(studio, tmp_path)
    signers = {dev_account(i).address: dev_account(i) for i in (1, 2, 3)}
    res = datanets_onchain.publish(studio, dev_account(0), "field-notes", signers=signers)
    snap = studio.datanets.get_snapshot("field-notes")
    assert res["created"] and res["published"] and res["changed"]
    assert res["records"] == snap["records"] == 12
    assert res["bound"] == {dev_account(i).address: 4 for i in (1, 2, 3)} and res["unbound"] == {}
    assert len(res["transactions"]) == 2  # createDatanet + publishSnapshot carrying every batch
    reg = contracts.contract(client, "DatanetRegistry")
    on = reg.functions.getSnapshot(res["onchain_id"], res["version"]).call()
    assert "0x" + on[0].hex() == snap["root"] and on[2] == 12 and on[3] == 12
    # Any record's proof from the local store verifies on chain.
    for rec in studio.datanets.snapshot_records("field-notes")[:3]:
        proof = studio.datanets.proof("field-notes", rec.record_id)
        assert reg.functions.verifyRecord(
            res["onchain_id"],
            res["version"],
            as_bytes32(rec.content_sha256),
            rec.contributor,
            license_hash(rec.license),
            proof,
        ).call()
    # Re-running is a no-op: nothing sent, same answer.
    n = _tx_count(studio)
    again = datanets_onchain.publish(studio, dev_account(0), "field-notes", signers=signers)
    assert not again["changed"] and again["transactions"] == [] and _tx_count(studio) == n
    assert again["onchain_id"] == res["onchain_id"] and again["bound"] == res["bound"]
    assert datanets_onchain.status(studio, "field-notes")["latest_version"] == res["version"]
    # Events alone rebuild the on-chain history: snapshot, and every record under its contributor.
    hist = datanets_onchain.history(studio, res["onchain_id"])
    assert hist["owner"] == dev_account(0).address and list(hist["snapshots"]) == [1]
    assert hist["snapshots"][1]["root"] == snap["root"] and hist["snapshots"][1]["records"] == 12
    by_who: dict[str, list[str]] = {}
    for rec in studio.datanets.snapshot_records("field-notes"):
        by_who.setdefault(rec.contributor, []).append("0x" + rec.content_sha256)
    assert hist["snapshots"][1]["contributions"] == by_who
    # A crash after the transactions but before the bookkeeping: the chain is read, nothing resent.
    with studio.store.transaction():
        studio.store.execute("DELETE FROM onchain_snapshots")
        studio.store.execute("DELETE FROM onchain_contributions")
    resumed = datanets_onchain.publish(studio, dev_account(0), "field-notes", signers=signers)
    assert not resumed["changed"] and _tx_count(studio) == n and resumed["bound"] == res["bound"]
    assert studio.store.one("SELECT COUNT(*) AS n FROM onchain_contributions")["n"] == 3


def test_publish_binds_late_contributors_and_new_versions(
    studio: Any, anvil: Anvil, tmp_path: Path
) -> None:
    client = _attach(studio, anvil)
    _make_datanet(studio, tmp_path)
    a1, a2 = dev_account(1), dev_account(2)
    res = datanets_onchain.publish(studio, dev_account(0), "field-notes", signers={a1.address: a1})
    assert res["bound"] == {a1.address: 4}
    assert set(res["unbound"]) == {a2.address, dev_account(3).address}
    # Contributor 2's key arrives later: only their batch is sent, the snapshot is not re-published.
    later = datanets_onchain.publish(
        studio, dev_account(0), "field-notes", signers={a1.address: a1, a2.address: a2}
    )
    assert not later["published"] and len(later["transactions"]) == 1
    assert later["bound"] == {a1.address: 4, a2.address: 4}
    # A new snapshot version is published next to the old one, on the same on-chain Datanet.
    studio.datanets.add_files(
        "field-notes", [_write(tmp_path, 1, 2, tag="b")], contributor=a1.address
    )
    studio.datanets.curate("field-notes", accept_all=True, min_score=0.0)
    assert studio.datanets.snapshot("field-notes")["version"] == 2
    v2 = datanets_onchain.publish(studio, dev_account(0), "field-notes", signers={a1.address: a1})
    assert (
        v2["version"] == 2
        and v2["published"]
        and not v2["created"]
        and v2["onchain_id"] == res["onchain_id"]
    )
    assert v2["bound"] == {a1.address: 6}
    reg = contracts.contract(client, "DatanetRegistry")
    assert reg.functions.feesAccrued().call() == 2 * contracts.DEVNET_PARAMS["publish_fee"]


def test_publish_refuses_a_stranger_and_an_unsnapshotted_datanet(
    studio: Any, anvil: Anvil, tmp_path: Path
) -> None:
    from studio.core.errors import ChainError, InvalidInput

    _attach(studio, anvil)
    studio.datanets.create("empty-one", license="CC0-1.0")
    with pytest.raises(InvalidInput, match="snapshot"):
        datanets_onchain.publish(studio, dev_account(0), "empty-one")
    _make_datanet(studio, tmp_path)
    datanets_onchain.publish(studio, dev_account(0), "field-notes")
    with pytest.raises(ChainError, match="neither the owner"):
        datanets_onchain.publish(studio, dev_account(5), "field-notes")


def test_model_inference_attribution_and_rewards_via_pipeline(
    studio: Any, anvil: Anvil, tmp_path: Path
) -> None:
    _attach(studio, anvil)
    _make_datanet(studio, tmp_path)
    # Contributors 1 and 2 bind their records (only payees can be named in an attribution).
    signers = {dev_account(i).address: dev_account(i) for i in (1, 2)}
    datanets_onchain.publish(studio, dev_account(0), "field-notes", signers=signers)
    owner, node, payer = dev_account(4), dev_account(5), dev_account(6)
    m = ledger.register_model(
        studio,
        owner,
        base_model_hash="0x" + "11" * 32,
        adapter_hash="0x" + "22" * 32,
        config_hash="0x" + "33" * 32,
        snapshots=[("field-notes", 1)],
        metadata_uri="studio:model/demo",
        price_wei=10**18,
        model_id="m-1",
    )
    again = ledger.register_model(
        studio,
        owner,
        base_model_hash="0x" + "11" * 32,
        adapter_hash="0x" + "22" * 32,
        config_hash="0x" + "33" * 32,
        snapshots=[("field-notes", 1)],
        metadata_uri="studio:model/demo",
        price_wei=10**18,
        model_id="m-1",
    )
    assert not again["changed"] and again["onchain_id"] == m["onchain_id"]
    staking.deposit(studio, node, 1_000 * 10**18, "node")
    assert staking.status(studio, node.address)["roles"]["node"]["staked"]
    inf = ledger.pay_for_inference(studio, payer, m["onchain_id"], node=node.address)
    c1, c2 = dev_account(1).address, dev_account(2).address
    rec = ledger.record_attribution(
        studio, node, inf["inference_id"], "0x" + "44" * 32, [c2, c1, c2], [3_000, 5_000, 2_000]
    )
    assert sorted(zip(rec["contributors"], rec["bps"], strict=True)) == sorted(
        [(c1, 5_000), (c2, 5_000)]
    )
    anvil.increase_time(contracts.DEVNET_PARAMS["challenge_window_s"])
    split = ledger.finalize(studio, payer, inf["inference_id"])
    assert sum(v for k, v in split.items() if k.endswith("_wei")) == 10**18
    owed = 10**18 * 5_000 // 10_000 * 5_000 // 10_000
    assert staking.claimable(studio, c1) == owed
    before = anvil.balance(c1)
    got = staking.claim(studio, dev_account(1))
    assert got["claimed_wei"] == owed
    assert 0 < anvil.balance(c1) - before < owed  # the payout less the claim's gas
    assert staking.claim(studio, dev_account(1))["claimed_wei"] == 0
    # The owner changes the price, then retires the version: no more payments.
    from studio.core.errors import ChainError

    ledger.set_model_price(studio, owner, m["onchain_id"], 2 * 10**18)
    with pytest.raises(ChainError, match="PaymentBelowPrice"):
        ledger.pay_for_inference(
            studio, payer, m["onchain_id"], node=node.address, max_fee_wei=10**18
        )
    ledger.retire_model(studio, owner, m["onchain_id"])
    with pytest.raises(ChainError, match="ModelRetired"):
        ledger.pay_for_inference(studio, payer, m["onchain_id"], node=node.address)
    # Unstake: request, then cooldown, then withdraw.
    r = staking.withdraw_or_request(studio, node, "node")
    assert r["action"] == "requested"
    with pytest.raises(ChainError, match="cooling down"):
        staking.withdraw_or_request(studio, node, "node")
    anvil.increase_time(contracts.DEVNET_PARAMS["unstake_cooldown_s"])
    assert staking.withdraw_or_request(studio, node, "node")["action"] == "withdrawn"


def test_cli_publish_stake_rewards(
    cli: Any, anvil: Anvil, tmp_path: Path, studio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import studio.chain.keystore as ks

    monkeypatch.setattr(
        ks, "SCRYPT_N", 2**10
    )  # fast keystores for the test; the format is the same
    monkeypatch.setenv("STUDIO_NETWORK", "custom")
    monkeypatch.setenv("STUDIO_RPC_URL", anvil.url)
    monkeypatch.setenv("STUDIO_CHAIN_ID", str(anvil.chain_id))
    from studio.app import Studio

    with Studio(studio_home) as s:
        client = ChainClient.for_url(s, anvil.url, anvil.chain_id)
        dep = contracts.ensure_deployed(client, allow_deploy=True)
        assert (
            json.loads(contracts.deployment_path(client).read_text())["contracts"]
            == dep["contracts"]
        )
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery staple\n")
    pw.chmod(0o600)  # else: a visible warning
    for i in (0, 1):
        key = tmp_path / f"k{i}"
        key.write_text(anvil.keys[i])
        rc, out, err = cli(
            "wallet", "import", "--private-key-file", str(key), "--password-file", str(pw)
        )
        assert rc == 0, err
    with Studio(studio_home) as s:
        s.datanets.create("cli-notes", license="CC-BY-4.0")
        s.datanets.add_files("cli-notes", [_write(tmp_path, 1, 3)], contributor=anvil.accounts[1])
        s.datanets.add_files("cli-notes", [_write(tmp_path, 2, 2)], contributor=anvil.accounts[2])
        s.datanets.curate("cli-notes", accept_all=True, min_score=0.0)
        s.datanets.snapshot("cli-notes")
    rc, out, err = cli("datanet", "publish", "cli-notes", "--password-file", str(pw), "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert (
        res["published"]
        and res["bound"] == {anvil.accounts[1]: 3}
        and res["unbound"] == {anvil.accounts[2]: 2}
    )
    rc, out, err = cli("datanet", "publish", "cli-notes", "--password-file", str(pw))
    assert rc == 0 and "nothing to do" in out and "NOT bound" in out
    rc, out, err = cli("datanet", "publish", "no-such", "--password-file", str(pw))
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "no-such" in err
    rc, out, err = cli("stake", "deposit", "10", "--role", "node", "--password-file", str(pw))
    assert rc == 1 and "at least 1,000 OPEN" in err and len(err.strip().splitlines()) == 1
    rc, out, err = cli(
        "stake", "deposit", "1000", "--role", "validator", "--password-file", str(pw)
    )
    assert rc == 0, err
    rc, out, err = cli("stake", "status", "--json")
    assert rc == 0 and json.loads(out)["roles"]["validator"]["active_wei"] == str(1000 * 10**18)
    rc, out, err = cli("stake", "withdraw", "--role", "validator", "--password-file", str(pw))
    assert rc == 0 and "Requested unstake" in out
    rc, out, err = cli("stake", "withdraw", "--role", "validator", "--password-file", str(pw))
    assert rc == 1 and "cooling down" in err
    rc, out, err = cli("rewards", "show", "--json")
    assert rc == 0 and json.loads(out)["claimable_wei"] == "0"
    rc, out, err = cli("rewards", "claim", "--password-file", str(pw))
    assert rc == 0 and "nothing to claim" in out


def test_deployment_is_reused_and_redeployed_when_code_is_gone(studio: Any, anvil: Anvil) -> None:
    client = _attach(studio, anvil)
    first = contracts.ensure_deployed(client, allow_deploy=True)
    n = _tx_count(studio)
    assert contracts.ensure_deployed(client, allow_deploy=True) == first and _tx_count(studio) == n
    rows = studio.store.query(
        "SELECT name, address FROM deployments WHERE chain_id = ?", (anvil.chain_id,)
    )
    assert {r["name"]: r["address"] for r in rows} == first["contracts"]
    # A deployment file pointing at addresses without code (a wiped chain) is replaced.
    path = contracts.deployment_path(client)
    doc = json.loads(path.read_text())
    doc["contracts"]["Staking"] = "0x" + "00" * 19 + "01"
    path.write_text(json.dumps(doc))
    again = contracts.ensure_deployed(client, allow_deploy=True)
    assert again["contracts"]["Staking"] != doc["contracts"]["Staking"]
    assert all(len(anvil.w3.eth.get_code(a)) > 0 for a in again["contracts"].values())


def test_demo_chain_stage_on_the_embedded_devnet(
    studio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import studio.chain.keystore as ks
    from studio.commands import Context
    from studio.demo_stages import chain as chain_stage
    from studio.demo_stages import datanets as datanets_stage

    monkeypatch.setattr(ks, "SCRYPT_N", 2**10)
    ctx = Context(home=str(studio_home), quiet=True)
    state: dict[str, Any] = {}
    try:
        datanets_stage.run_stage(ctx, state)
        first = chain_stage.run_stage(ctx, state)
        pub = first["publish"]
        assert (
            pub["published"] and not pub["unbound"] and sum(pub["bound"].values()) == pub["records"]
        )
        assert int(first["balances"][first["account"]]) > 0
        second = chain_stage.run_stage(ctx, state)
        assert not second["publish"]["changed"] and second["account"] == first["account"]
    finally:
        ctx.studio.chain.devnet.down()
        ctx.studio.close()
