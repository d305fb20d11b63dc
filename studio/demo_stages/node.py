"""Demo stage: the light node. It starts in-process on the devnet (headers and receipts verified
from genesis), a user pays for an inference and asks the node with the official `openai` client,
the answer comes back with its attribution, the node records it on the AttributionLedger, and
after the challenge window the contributors' rewards are shown."""

from __future__ import annotations

import time
from typing import Any

from studio.commands import Context

PAYER_DEV_INDEX = 6


def run_stage(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    import openai

    from studio.chain import ledger, staking
    from studio.chain.devnet import dev_account
    from studio.chain.networks import format_open
    from studio.node.config import NodeConfig
    from studio.node.service import Node

    if any(k not in state for k in ("model", "account", "password_file")):
        ctx.say("Needs the chain and train stages: skipping.")
        return {"skipped": True}
    studio = ctx.studio
    if studio.chain.profile.name != "devnet":
        ctx.say("(the node stage runs on the devnet only; skipped)")
        return {"skipped": True}
    model_id = state["model"]
    row = studio.store.one(
        "SELECT onchain_id FROM onchain_models WHERE model_id = ? AND chain_id = ?",
        (model_id, int(studio.chain.chain_id)),
    )
    if row is None:
        ctx.say("The model is not registered on chain (settle stage skipped): skipping.")
        return {"skipped": True}
    cfg = NodeConfig(
        api="127.0.0.1:0",
        models=[model_id],
        account=state["account"],
        password_file=state["password_file"],
        poll_s=0.2,
    )
    ctx.say("1. Start the light node: follow the devnet, verify every header and receipt")
    node = Node(studio, cfg).start()
    try:
        sync = node.follower.status()
        ctx.say(
            f"   verified blocks 0…{sync['verified_to']} ({sync['events_indexed']} contract events "
            f"indexed); serving {model_id} at {node.url}/v1"
        )
        ctx.say("2. A user pays for an inference on the model, served by this node")
        payer = dev_account(PAYER_DEV_INDEX)
        paid = ledger.pay_for_inference(
            studio,
            payer,
            int(row["onchain_id"]),
            node=node.address,  # the payment names the node that serves it
            key=f"demo-node-pay:{model_id}",
        )
        iid = paid["inference_id"]
        ctx.say(f"   inference #{iid}: {format_open(paid['fee_wei'])} from {payer.address}")
        ctx.say("3. The user asks the node with the official openai client and the inference id")
        client = openai.OpenAI(base_url=node.url + "/v1", api_key="local", max_retries=0)
        try:
            r = client.chat.completions.create(
                model=model_id,
                messages=[{"role": "user", "content": "When is the fog bell rung?"}],
                max_tokens=24,
                temperature=0.7,
                seed=1,
                extra_body={"inference_id": iid},
            )
            att = r.model_extra["attribution"]
            ctx.say(f"   answer: {r.choices[0].message.content.strip()[:100]!r}")
        except openai.ConflictError:
            import httpx

            att = httpx.get(f"{node.url}/v1/inferences/{iid}/attribution").json()["report"]
            att = {"report_hash": att["report_hash"], "weights": att["weights"]}
            ctx.say("   (already served on an earlier run: its report is kept)")
        ctx.say(f"   attribution {att['report_hash']}")
        for w in att["weights"]:
            ctx.say(f"   {w['contributor']}  {w['bps']:>5} bps")
        ctx.say("4. The node records the report's hash and weights on the AttributionLedger")
        deadline = time.monotonic() + 120
        info = ledger.inference(studio, iid)
        while info["status"] == "paid" and time.monotonic() < deadline:
            time.sleep(0.2)
            info = ledger.inference(studio, iid)
        ctx.say(f"   on chain: status {info['status']}, recorded by {info['node']}")
        if info["status"] == "recorded":
            window = int(info["terms"]["challenge_window_s"])  # fixed when it was paid
            studio.chain.w3.provider.make_request("evm_increaseTime", [window + 1])
            studio.chain.w3.provider.make_request("evm_mine", [])
            ledger.finalize(studio, payer, iid)
        ctx.say("5. After the challenge window the fee is split; each payee collects their reward")
        held = {a.address for a in studio.wallet.list()}
        for w in att["weights"]:
            who = w["contributor"]
            owed = staking.claimable(studio, who)
            if owed and who in held:
                staking.claim(
                    studio, studio.wallet.unlock(who, password_file=state["password_file"])
                )
                ctx.say(f"   {who} collected {format_open(owed, places=6)}")
            else:
                ctx.say(f"   {who} has {format_open(owed, places=6)} to collect")
        st = node.status()
    finally:
        node.stop()
    return {"inference_id": iid, "report_hash": att["report_hash"], "served": st["paid_inferences"]}
