"""Everything the node knows about the contracts' insides, in one small module: storage slots of
the state it proves with eth_getProof (stakes, inferences, model prices) and the calls it makes
(record an attribution, challenge). When the contracts change, this is the file to change; the
tests compare each proven value with the contract's own view function.

Storage layout (solc `storageLayout` of contracts/*.sol):
  Staking:            slot 6  _positions[address][uint8 role] → Position{active, pending, unlockAt,
                      minimum, locks}
  AttributionLedger:  slot 13 _inferences[uint256] → Inference{payer, modelOwner, node,
                      challenger, modelId, fee, bond, reportHash,
                      (paidAt|recordedAt|challengedAt|status), terms…} (times: the ledger clock)
  ModelRegistry:      slot 5  _models[uint256] → Model{owner, base, adapter, config, uri, price,
                      (registeredAt|retired)}
(AccessControlDefaultAdminRules and Pausable take slots 0–3 of each.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .verify import Header, hb, mapping_slot, slot_key, verify_account_proof

if TYPE_CHECKING:
    from studio.app import Studio

STAKING_POSITIONS_SLOT = 6
LEDGER_INFERENCES_SLOT = 13
MODELS_SLOT = 5
INFERENCE_STATUS = ("none", "paid", "recorded", "challenged", "finalized", "voided")


def stake_slot(account: str, role: int) -> int:
    inner = mapping_slot(hb(account), STAKING_POSITIONS_SLOT)
    return mapping_slot(int(role), inner)


def _prove(rpc: Any, header: Header, address: str, slots: list[int]) -> dict[int, int]:
    keys = [slot_key(s) for s in slots]
    acct = verify_account_proof(header, address, rpc.proof(address, keys, header.number), keys)
    return {s: acct.storage[slot_key(s)] for s in slots}


def _addr(word: int) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address((word & (2**160 - 1)).to_bytes(20, "big")))


def proven_stake(rpc: Any, header: Header, staking: str, account: str, role: int) -> int:
    """The account's active stake for `role`, proven against the header's stateRoot."""
    s = stake_slot(account, role)
    return _prove(rpc, header, staking, [s])[s]


def proven_inference(rpc: Any, header: Header, ledger: str, inference_id: int) -> dict[str, Any]:
    """An inference's on-chain record, proven against the header's stateRoot."""
    base = mapping_slot(int(inference_id), LEDGER_INFERENCES_SLOT)
    v = _prove(rpc, header, ledger, [base + i for i in range(9)])
    packed = v[base + 8]
    status = (packed >> 192) & 0xFF
    return {
        "inference_id": int(inference_id),
        "payer": _addr(v[base]),
        "model_owner": _addr(v[base + 1]),
        "node": _addr(v[base + 2]),
        "challenger": _addr(v[base + 3]),
        "model_id": v[base + 4],
        "fee_wei": v[base + 5],
        "bond_wei": v[base + 6],
        "report_hash": "0x" + v[base + 7].to_bytes(32, "big").hex(),
        "paid_at": packed & (2**64 - 1),
        "recorded_at": (packed >> 64) & (2**64 - 1),
        "status": INFERENCE_STATUS[status] if status < len(INFERENCE_STATUS) else str(status),
    }


def proven_model_price(rpc: Any, header: Header, registry: str, model_id: int) -> dict[str, Any]:
    base = mapping_slot(int(model_id), MODELS_SLOT)
    v = _prove(rpc, header, registry, [base, base + 5, base + 6])
    return {
        "owner": _addr(v[base]),
        "price_wei": v[base + 5],
        "retired": bool((v[base + 6] >> 64) & 0xFF),
    }


# -- the calls the node makes (through the studio's transaction pipeline) --------------------------


def payment_node(args: dict[str, Any]) -> str | None:
    """The node an InferencePaid event names, where the contracts bind payments to a node."""
    node = args.get("node")
    return str(node) if node else None


def record_attribution(
    studio: Studio, account: Any, inference_id: int, report_hash: str, weights: list[dict[str, Any]]
) -> dict[str, Any]:
    from studio.chain import ledger

    return ledger.record_attribution(
        studio,
        account,
        int(inference_id),
        report_hash,
        [w["contributor"] for w in weights],
        [int(w["bps"]) for w in weights],
    )


def record_key(chain_id: int, ledger_address: str, inference_id: int) -> str:
    """The idempotency key the pipeline records an attribution under (see chain.ledger)."""
    return f"attribution-record:{chain_id}:{ledger_address}:{inference_id}"


def challenge(studio: Studio, account: Any, inference_id: int) -> dict[str, Any]:
    from studio.chain import ledger

    return ledger.challenge(studio, account, int(inference_id))
