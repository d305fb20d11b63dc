"""Models and inferences on chain: register a model version, pay for an inference (naming the
node that serves it), record its attribution (that node only, payees of the model's training
snapshots only), challenge, resolve (or settle an unresolved challenge) and finalize (the fee
split lands in claimable balances; see studio.chain.staking for claiming)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from studio.core.errors import ChainError, InvalidInput

from . import contracts
from .contributions import as_bytes32

if TYPE_CHECKING:
    from .context import OnChain

BPS = 10_000
STATUS = ("none", "paid", "recorded", "challenged", "finalized", "voided")


def _snapshot_refs(studio: OnChain, snapshots: Iterable[Any]) -> list[tuple[int, int]]:
    """(on-chain Datanet id, version) pairs from (name, version), {"datanet", "version"} or (int, int)."""
    from .datanets_onchain import onchain_id

    refs = []
    for s in snapshots:
        if isinstance(s, dict):
            name, ver = s["datanet"], s["version"]
        else:
            name, ver = s
        if isinstance(name, int):
            refs.append((name, int(ver)))
            continue
        did = onchain_id(studio, str(name))
        if did is None:
            raise ChainError(
                f"The Datanet '{name}' is not published on this chain.",
                hint=f"Publish it first: studio datanet publish {name}",
            )
        refs.append((did, int(ver)))
    if not refs:
        raise InvalidInput("A model must name the Datanet snapshots it was trained on.")
    return refs


def register_model(
    studio: OnChain,
    account: Any,
    *,
    base_model_hash: str | bytes,
    adapter_hash: str | bytes,
    config_hash: str | bytes,
    snapshots: Sequence[Any],
    metadata_uri: str,
    price_wei: int,
    model_id: Any = None,
) -> dict[str, Any]:
    """Register a model version; `snapshots` as (datanet name, version) pairs. With `model_id` (the
    local model's id) the on-chain id is remembered in `onchain_models` and a re-run is a no-op."""
    client = studio.chain
    mr = contracts.contract(client, "ModelRegistry")
    cid = int(client.chain_id)
    if model_id is not None:
        row = studio.store.one(
            "SELECT * FROM onchain_models WHERE model_id = ? AND chain_id = ?", (model_id, cid)
        )
        if row is not None and int(mr.functions.modelCount().call()) >= int(row["onchain_id"]):
            return {
                "model_id": model_id,
                "onchain_id": int(row["onchain_id"]),
                "tx": row["tx_hash"],
                "chain_id": cid,
                "changed": False,
            }
    refs = _snapshot_refs(studio, snapshots)
    hashes = [as_bytes32(h) for h in (base_model_hash, adapter_hash, config_hash)]
    res = client.tx.transact(
        account,
        mr.functions.registerModel(*hashes, refs, metadata_uri, int(price_wei)),
        purpose="register model version",
        key=f"model-register:{cid}:{mr.address}:{hashes[1].hex()}:{hashes[2].hex()}",
    )
    oid = int(contracts.receipt_event(mr, "ModelRegistered", res)["modelId"])
    if model_id is not None:
        with studio.store.transaction():
            studio.store.execute(
                "INSERT OR REPLACE INTO onchain_models(model_id, chain_id, onchain_id, tx_hash, created_at)"
                " VALUES (?,?,?,?,?)",
                (model_id, cid, oid, res.hash, time.time()),
            )
    return {
        "model_id": model_id,
        "onchain_id": oid,
        "tx": res.hash,
        "chain_id": cid,
        "snapshots": refs,
        "changed": True,
    }


def pay_for_inference(
    studio: OnChain,
    account: Any,
    onchain_model_id: int,
    *,
    node: str,
    max_fee_wei: int | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Escrow the model's price for an inference served by `node` (a staked node: only it may
    record the attribution) and return the inference id. `max_fee_wei` (default: today's price)
    is what is sent; the contract takes the price and refunds the rest at once."""
    client = studio.chain
    mr = contracts.contract(client, "ModelRegistry")
    led = contracts.contract(client, "AttributionLedger")
    _owner, price = contracts.read(
        client, mr.functions.priceOf(int(onchain_model_id)), f"model #{onchain_model_id}"
    )
    value = int(price if max_fee_wei is None else max_fee_wei)
    res = client.tx.transact(
        account,
        led.functions.payForInference(int(onchain_model_id), to_checksum_address(node)),
        value=value,
        purpose=f"pay for an inference on model #{onchain_model_id}",
        key=key,
    )
    ev = contracts.receipt_event(led, "InferencePaid", res)
    return {
        "inference_id": int(ev["inferenceId"]),
        "fee_wei": int(ev["fee"]),
        "node": str(ev["node"]),
        "tx": res.hash,
    }


def payees(studio: OnChain, onchain_model_id: int, addresses: Iterable[str]) -> dict[str, bool]:
    """Which addresses the ledger accepts as contributors of this model: payees (bound
    contributors or the Datanet owner) of one of its training snapshots."""
    client = studio.chain
    mr = contracts.contract(client, "ModelRegistry")
    reg = contracts.contract(client, "DatanetRegistry")
    snaps = contracts.read(
        client, mr.functions.getTrainingSnapshots(int(onchain_model_id)), "training snapshots"
    )
    out: dict[str, bool] = {}
    for a in addresses:
        who = str(to_checksum_address(a))
        out[who] = any(bool(reg.functions.isPayee(int(d), int(v), who).call()) for d, v in snaps)
    return out


def payable_weights(
    studio: OnChain, onchain_model_id: int, contributors: Sequence[str], bps: Sequence[int]
) -> tuple[list[str], list[int]]:
    """A report's weights restricted to what the ledger accepts: the share of every contributor
    who is not a payee of the model's snapshots (e.g. never bound their records) goes to the
    owner of the model's first training Datanet, the one who receives the pooled tail."""
    cs, ws = normalise_weights(contributors, bps)
    ok = payees(studio, onchain_model_id, cs)
    if all(ok.values()):
        return cs, ws
    client = studio.chain
    mr = contracts.contract(client, "ModelRegistry")
    reg = contracts.contract(client, "DatanetRegistry")
    snaps = mr.functions.getTrainingSnapshots(int(onchain_model_id)).call()
    owner = to_checksum_address(reg.functions.getDatanet(int(snaps[0][0])).call()[0])
    moved = sum(w for c, w in zip(cs, ws, strict=True) if not ok[c])
    kept = [(c, w) for c, w in zip(cs, ws, strict=True) if ok[c]]
    return normalise_weights([c for c, _ in kept] + [owner], [w for _, w in kept] + [moved])


def normalise_weights(
    contributors: Sequence[str], bps: Sequence[int]
) -> tuple[list[str], list[int]]:
    """Merge duplicates, sort by address (the contract's order), check the sum is 10,000."""
    if len(contributors) != len(bps):
        raise InvalidInput("contributors and bps must have the same length.")
    merged: dict[str, int] = {}
    for c, b in zip(contributors, bps, strict=True):
        if int(b) < 0:
            raise InvalidInput("A weight cannot be negative.")
        a = to_checksum_address(c)
        merged[a] = merged.get(a, 0) + int(b)
    items = sorted(((a, b) for a, b in merged.items() if b > 0), key=lambda x: int(x[0], 16))
    total = sum(b for _, b in items)
    if total != BPS:
        raise InvalidInput(f"Attribution weights sum to {total} bps, not 10,000.")
    return [a for a, _ in items], [b for _, b in items]


def record_attribution(
    studio: OnChain,
    account: Any,
    inference_id: int,
    report_hash: str | bytes,
    contributors: Sequence[str],
    bps: Sequence[int],
) -> dict[str, Any]:
    """Record a report's contributor weights for a paid inference (the account must be the staked
    node the payment named; every contributor a payee, see `payable_weights`)."""
    client = studio.chain
    led = contracts.contract(client, "AttributionLedger")
    cs, ws = normalise_weights(contributors, bps)
    res = client.tx.transact(
        account,
        led.functions.recordAttribution(int(inference_id), as_bytes32(report_hash), cs, ws),
        purpose=f"record attribution of inference #{inference_id}",
        key=f"attribution-record:{client.chain_id}:{led.address}:{inference_id}",
    )
    return {"inference_id": int(inference_id), "contributors": cs, "bps": ws, "tx": res.hash}


TERMS = (
    "protocol_bps",
    "model_owner_bps",
    "node_bps",
    "challenge_window_s",
    "record_timeout_s",
    "resolve_period_s",
    "challenge_bond_wei",
    "slash_amount_wei",
)


def inference(studio: OnChain, inference_id: int) -> dict[str, Any]:
    """An inference as a dict. Times (`*_at`) are wall-clock estimates: the ledger counts on its
    own clock, which stands still while it is paused (`clock_offset_s` is the difference now)."""
    client = studio.chain
    led = contracts.contract(client, "AttributionLedger")
    i = contracts.read(
        client, led.functions.getInference(int(inference_id)), f"inference #{inference_id}"
    )
    from .staking import chain_now

    now = chain_now(studio)
    offset = int(led.functions.pausedTotal().call())
    if bool(led.functions.paused().call()):
        offset += now - int(led.functions.pausedSince().call())
    terms = dict(zip(TERMS, (int(x) for x in i[12]), strict=True))

    def wall(t: int) -> int | None:
        return t + offset if t else None

    recorded, challenged = int(i[9]), int(i[10])
    return {
        "inference_id": int(inference_id),
        "payer": i[0],
        "model_owner": i[1],
        "node": i[2],
        "challenger": i[3] if int(i[3], 16) else None,
        "model_id": int(i[4]),
        "fee_wei": int(i[5]),
        "bond_wei": int(i[6]),
        "report_hash": "0x" + bytes(i[7]).hex(),
        "paid_at": wall(int(i[8])),
        "recorded_at": wall(recorded),
        "challenged_at": wall(challenged),
        "status": STATUS[int(i[11])],
        "terms": terms,
        "clock_offset_s": offset,
        "record_by": wall(int(i[8]) + terms["record_timeout_s"]),
        "challenge_closes_at": wall(recorded + terms["challenge_window_s"]) if recorded else None,
        "resolve_by": wall(challenged + terms["resolve_period_s"]) if challenged else None,
    }


def finalize(studio: OnChain, account: Any, inference_id: int) -> dict[str, Any]:
    led = contracts.contract(studio.chain, "AttributionLedger")
    res = studio.chain.tx.transact(
        account,
        led.functions.finalize(int(inference_id)),
        purpose=f"finalize inference #{inference_id}",
    )
    split = contracts.receipt_event(led, "FeeSplit", res)
    return {
        "inference_id": int(inference_id),
        "tx": res.hash,
        "treasury_wei": int(split["treasury"]),
        "model_owner_wei": int(split["modelOwner"]),
        "node_wei": int(split["node"]),
        "contributors_wei": int(split["contributors"]),
    }


def challenge(studio: OnChain, account: Any, inference_id: int) -> dict[str, Any]:
    """Challenge a recorded attribution, posting the inference's own bond (anyone but its node)."""
    led = contracts.contract(studio.chain, "AttributionLedger")
    bond = int(inference(studio, inference_id)["terms"]["challenge_bond_wei"])
    res = studio.chain.tx.transact(
        account,
        led.functions.challenge(int(inference_id)),
        value=bond,
        purpose=f"challenge attribution of inference #{inference_id}",
    )
    return {"inference_id": int(inference_id), "bond_wei": bond, "tx": res.hash}


def resolve(studio: OnChain, account: Any, inference_id: int, *, upheld: bool) -> dict[str, Any]:
    led = contracts.contract(studio.chain, "AttributionLedger")
    res = studio.chain.tx.transact(
        account,
        led.functions.resolve(int(inference_id), bool(upheld)),
        purpose=f"resolve challenge on inference #{inference_id}",
    )
    ev = contracts.receipt_event(led, "ChallengeResolved", res)
    return {
        "inference_id": int(inference_id),
        "upheld": bool(upheld),
        "slashed_wei": int(ev["slashed"]),
        "tx": res.hash,
    }


def settle_unresolved(studio: OnChain, account: Any, inference_id: int) -> dict[str, Any]:
    """After the arbiter missed the resolve deadline (anyone may call it): payer refunded,
    challenger's bond returned, node neither slashed nor paid."""
    led = contracts.contract(studio.chain, "AttributionLedger")
    res = studio.chain.tx.transact(
        account,
        led.functions.settleUnresolved(int(inference_id)),
        purpose=f"settle unresolved challenge on inference #{inference_id}",
    )
    return {"inference_id": int(inference_id), "tx": res.hash}


def set_model_price(
    studio: OnChain, account: Any, onchain_model_id: int, price_wei: int
) -> dict[str, Any]:
    """Change a model version's price per inference (its owner only)."""
    mr = contracts.contract(studio.chain, "ModelRegistry")
    res = studio.chain.tx.transact(
        account,
        mr.functions.setPrice(int(onchain_model_id), int(price_wei)),
        purpose=f"set the price of model #{onchain_model_id}",
    )
    return {"onchain_id": int(onchain_model_id), "price_wei": int(price_wei), "tx": res.hash}


def retire_model(studio: OnChain, account: Any, onchain_model_id: int) -> dict[str, Any]:
    """Retire a model version: it can no longer be paid for (its owner only)."""
    mr = contracts.contract(studio.chain, "ModelRegistry")
    res = studio.chain.tx.transact(
        account,
        mr.functions.retire(int(onchain_model_id)),
        purpose=f"retire model #{onchain_model_id}",
    )
    return {"onchain_id": int(onchain_model_id), "retired": True, "tx": res.hash}
