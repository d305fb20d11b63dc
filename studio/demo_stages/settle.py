"""Demo stage: the attribution report settles on chain and the contributors get paid.

The builder registers the fine-tuned model (with the snapshot it was trained on) at a price per
inference; stakes as a node; a user pays for an inference; the node records the report's hash
and weights on the AttributionLedger; once the challenge window has passed (the devnet's clock is
moved forward) the fee is split and each contributor claims their share."""

from __future__ import annotations

from typing import Any

from studio.commands import Context

PRICE_WEI = 2 * 10**18
PAYER_DEV_INDEX = 5  # a devnet account standing in for a user of the model


def _advance_devnet_clock(chain: Any, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [int(seconds)])
    chain.w3.provider.make_request("evm_mine", [])


def run_stage(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    from studio.chain import ledger, staking
    from studio.chain.devnet import dev_account
    from studio.chain.networks import format_open

    need = ("model", "account", "password_file", "report_hash", "weights")
    if any(k not in state for k in need):
        ctx.say("Needs the chain, train and attribution stages: skipping.")
        return {"skipped": True}
    studio = ctx.studio
    chain = studio.chain
    if chain.profile.name != "devnet":
        ctx.say("(settling is shown on the devnet only; skipped)")
        return {"skipped": True}
    me, pw, model_id = state["account"], state["password_file"], state["model"]
    account = studio.wallet.unlock(me, password_file=pw)

    ctx.say(
        f"1. Register {model_id} in the ModelRegistry at {format_open(PRICE_WEI)} per inference"
    )
    reg = studio.models.register(model_id, account, price_wei=PRICE_WEI)
    state_word = "registered" if reg.get("changed", True) else "already registered"
    ctx.say(f"   {state_word} as model #{reg['onchain_id']} (tx {reg['tx']})")

    ctx.say("2. Stake as a node (only a staked node may record attributions)")
    pos = staking.position(studio, me, "node")
    min_stake = pos["minimum_wei"]
    if not pos["staked"]:
        if chain.balance(me) < min_stake + 10**19:
            chain.devnet.faucet(me, min_stake + 10**19, pipeline=chain.tx)
        staking.deposit(studio, account, min_stake, "node")
    ctx.say(f"   {me} stakes {format_open(max(min_stake, pos['active_wei']))}")

    ctx.say("3. A user pays for an inference on the model (the fee is held in escrow)")
    payer = dev_account(PAYER_DEV_INDEX)
    paid = ledger.pay_for_inference(
        studio,
        payer,
        reg["onchain_id"],
        node=me,  # the payment names the serving node: only it may record the attribution
        key=f"demo-pay:{model_id}:{state['report_hash']}",
    )
    iid = paid["inference_id"]
    ctx.say(f"   inference #{iid}: {format_open(paid['fee_wei'])} from {payer.address}")

    ctx.say("4. The node records the attribution report: its hash and contributor weights")
    info = ledger.inference(studio, iid)
    # Only payees of the model's training snapshots can be paid (bound contributors, the
    # Datanet owner); anyone else's share goes to the owner with the pooled tail.
    payees, bps = ledger.payable_weights(
        studio,
        reg["onchain_id"],
        [w["contributor"] for w in state["weights"]],
        [w["bps"] for w in state["weights"]],
    )
    if info["status"] == "paid":
        ledger.record_attribution(studio, account, iid, state["report_hash"], payees, bps)
    ctx.say(f"   report {state['report_hash']}")
    for who, b in zip(payees, bps, strict=True):
        ctx.say(f"   {who}  {b:>5} bps")

    ctx.say("5. The challenge window passes with no challenge; the fee is split")
    info = ledger.inference(studio, iid)
    if info["status"] == "recorded":
        window = int(info["terms"]["challenge_window_s"])
        _advance_devnet_clock(chain, window + 1)
        split = ledger.finalize(studio, account, iid)
        for part in ("treasury_wei", "model_owner_wei", "node_wei", "contributors_wei"):
            ctx.say(f"   {part[:-4].replace('_', ' '):14} {format_open(split[part], places=6)}")

    ctx.say("6. Contributors claim their rewards")
    claimed = {}
    held = {a.address for a in studio.wallet.list()}
    for who in payees:
        owed = staking.claimable(studio, who)
        if owed and who in held:
            before = chain.balance(who)
            staking.claim(studio, studio.wallet.unlock(who, password_file=pw))
            claimed[who] = owed
            ctx.say(
                f"   {who} claimed {format_open(owed, places=6)} "
                f"(balance {format_open(before, places=4)} → {format_open(chain.balance(who), places=4)})"
            )
        elif owed:
            ctx.say(f"   {who} can claim {format_open(owed, places=6)}")
    return {"model": reg, "inference_id": iid, "claimed": {k: str(v) for k, v in claimed.items()}}
