"""Demo stage: the embedded devnet, a wallet, and the sample Datanet published on chain.

Runs after the datanets stage (which sets state["datanet"]). Safe to re-run on the same home: the
devnet keeps its state, the wallet is reused and publishing again is a no-op."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from studio.commands import Context

FUNDING_WEI = 100 * 10**18  # devnet OPEN for the demo account: gas + publishing fee


def _password_file(home: Path) -> Path:
    """The demo wallet's password, generated once and kept in a 0600 file in the demo home."""
    from studio.core import atomic

    path = home / "demo-password.txt"
    if not path.exists():
        atomic.write_text(path, secrets.token_urlsafe(18) + "\n", mode=0o600)
    return path


def _sample_contributors() -> list[str]:
    from eth_utils import to_checksum_address

    from studio.demo_stages.datanets import sample_dir

    manifest = json.loads((sample_dir() / "manifest.json").read_text("utf-8"))
    return sorted({to_checksum_address(f["contributor"]) for f in manifest["files"]})


def run_stage(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    from studio.chain import contracts, datanets_onchain
    from studio.chain.devnet import DEV_ACCOUNTS, dev_address, dev_private_key
    from studio.chain.networks import format_open

    studio = ctx.studio
    name = state.get("datanet")
    if not name:
        raise RuntimeError("the chain stage needs the datanets stage first")
    chain = studio.chain
    if chain.profile.name != "devnet":
        ctx.say(
            f"   (network {chain.profile.name}: the demo publishes on the devnet only; skipped)"
        )
        return {"skipped": True}

    ctx.say("1. Start the devnet (anvil, state kept in the data home)")
    net = chain.network
    ctx.say(f"   {net.rpc_url}, chain id {chain.chain_id}, block {chain.w3.eth.block_number}")
    dep = chain.deployment()
    ctx.say("   contracts (deployed once per chain id):")
    for cname, address in dep["contracts"].items():
        ctx.say(f"     {cname:18} {address}")

    ctx.say(
        "2. Wallet: create the demo account (keystore, scrypt), password from a file in the demo home"
    )
    pw = str(_password_file(studio.paths.home))
    wallet = studio.wallet
    held = {i.address for i in wallet.list()}
    dev_index = {dev_address(i): i for i in range(DEV_ACCOUNTS)}
    # The demo account is a fresh random key, never one of the public dev keys.
    own = [a for a in held if a not in dev_index]
    if own:
        me = studio.config.active_account if studio.config.active_account in own else own[0]
        ctx.say(f"   reusing {me}")
    else:
        me, _ = wallet.create(wallet.new_password(password_file=pw), label="demo")
        ctx.say(f"   created {me}")
    wallet.set_active(me)

    ctx.say("3. Import the sample contributors' devnet keys so they can sign their contributions")
    contributors = sorted(_sample_contributors(), key=lambda a: dev_index.get(a, DEV_ACCOUNTS))
    for who in contributors:
        if who in held:
            ctx.say(f"   {who} already in the wallet")
        elif who in dev_index:
            wallet.import_private_key(
                dev_private_key(dev_index[who]),
                wallet.new_password(password_file=pw),
                label=f"sample contributor (dev #{dev_index[who]})",
            )
            ctx.say(f"   imported {who} (devnet account #{dev_index[who]})")
        else:
            ctx.say(f"   {who} is not a devnet account: their records stay unbound")
    wallet.set_active(me)

    if chain.balance(me) < FUNDING_WEI // 10:
        res = chain.devnet.faucet(me, FUNDING_WEI, pipeline=chain.tx)
        ctx.say(f"   faucet: {format_open(FUNDING_WEI)} from dev account #0 → {me} (tx {res.hash})")

    ctx.say(
        f"4. Publish '{name}': create on chain, publish the snapshot root, bind every contribution"
    )
    account = wallet.unlock(me, password_file=pw)
    signers = {
        who: wallet.unlock(who, password_file=pw) for who in contributors if who in dev_index
    }
    res = datanets_onchain.publish(studio, account, name, signers=signers)
    if not res["changed"]:
        ctx.say(
            f"   already published as Datanet #{res['onchain_id']} v{res['version']}: nothing sent"
        )
    else:
        ctx.say(
            f"   Datanet #{res['onchain_id']}, v{res['version']}, root {res['root']}, {res['records']} records, "
            f"{len(res['transactions'])} transaction(s)"
        )
    for who, n in sorted(res["bound"].items()):
        ctx.say(f"   {who}: {n} contributions bound by their EIP-712 signature")
    for who, n in sorted(res["unbound"].items()):
        ctx.say(f"   {who}: {n} contributions not bound")

    ctx.say("5. Balances (OPEN, 18 decimals)")
    reg = contracts.contract(chain, "DatanetRegistry")
    balances = {}
    rows = [
        ("you", me),
        *((f"contributor #{dev_index.get(w, '?')}", w) for w in contributors),
        ("treasury (dev #0)", dep.get("treasury", dev_address(0))),
    ]
    for label, address in rows:
        wei = chain.balance(address)
        balances[address] = str(wei)
        ctx.say(f"   {label:20} {address}  {format_open(wei, places=6)}")
    fees = int(reg.functions.feesAccrued().call())
    ctx.say(f"   publishing fees waiting for the treasury: {format_open(fees)}")

    state["account"] = me
    state["password_file"] = pw
    state["onchain_datanet"] = res["onchain_id"]
    return {
        "network": chain.profile.name,
        "chain_id": chain.chain_id,
        "account": me,
        "contracts": dep["contracts"],
        "publish": res,
        "balances": balances,
    }
