"""What the light node checks instead of trusting the RPC: block headers (hash recomputed from the
RLP of their fields), receipts (the receipt trie rebuilt and compared with `receiptsRoot`), and
account/storage state (`eth_getProof` proofs walked from `stateRoot`).

Everything here takes the RPC's raw JSON (hex strings, as `eth_getBlockByNumber` and friends return
them) and raises `VerificationError` naming what did not match. No web3 here: only `rlp`, `trie`
and `eth-hash`, so the checks cannot inherit a formatter's mistake."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie
from trie.exceptions import BadTrieProof

from studio.core.errors import StudioError

EMPTY_TRIE_ROOT = keccak(rlp.encode(b""))

# Header fields in the order of the consensus spec (Yellow Paper + EIP-1559, -4895, -4844, -4788,
# -7685). A header carries a prefix of this list: pre-London chains stop at `nonce`, Cancun at
# `parentBeaconBlockRoot`, Prague (and OP-Stack Isthmus) at `requestsHash`.
HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("parentHash", "bytes"),
    ("sha3Uncles", "bytes"),
    ("miner", "bytes"),
    ("stateRoot", "bytes"),
    ("transactionsRoot", "bytes"),
    ("receiptsRoot", "bytes"),
    ("logsBloom", "bytes"),
    ("difficulty", "int"),
    ("number", "int"),
    ("gasLimit", "int"),
    ("gasUsed", "int"),
    ("timestamp", "int"),
    ("extraData", "bytes"),
    ("mixHash", "bytes"),
    ("nonce", "bytes"),
    ("baseFeePerGas", "int"),
    ("withdrawalsRoot", "bytes"),
    ("blobGasUsed", "int"),
    ("excessBlobGas", "int"),
    ("parentBeaconBlockRoot", "bytes"),
    ("requestsHash", "bytes"),
)
OPTIONAL_FROM = 15  # fields before baseFeePerGas are always present

DEPOSIT_TX_TYPE = 0x7E  # OP-Stack deposit transactions (L1 → L2), and their receipts


class VerificationError(StudioError):
    """The RPC gave data that does not match what the chain commits to (a lying or broken RPC)."""

    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None, block: int | None = None):
        super().__init__(
            message,
            hint="Use another RPC endpoint you trust; the node will not act on this data.",
        )
        self.field = field
        self.block = block


def hb(value: Any) -> bytes:
    """Hex string (or bytes) → bytes."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    s = str(value)
    s = s[2:] if s[:2] in ("0x", "0X") else s
    if len(s) % 2:
        s = "0" + s
    return bytes.fromhex(s)


def hi(value: Any) -> int:
    """Hex quantity (or int) → int."""
    if isinstance(value, int):
        return value
    return int(str(value), 16)


def hx(b: bytes) -> str:
    return "0x" + b.hex()


# -- headers -------------------------------------------------------------------------------------


def header_fields(block: dict[str, Any]) -> list[Any]:
    """The header's RLP items: the fields present, in spec order. A gap (a later field present
    while an earlier optional one is missing) cannot be hashed honestly and is refused."""
    items: list[Any] = []
    missing: str | None = None
    for i, (name, kind) in enumerate(HEADER_FIELDS):
        value = block.get(name)
        if value is None:
            if i < OPTIONAL_FROM:
                raise VerificationError(
                    f"Block header lacks {name}.", field=name, block=_num(block)
                )
            missing = missing or name
            continue
        if missing is not None:
            raise VerificationError(
                f"Block header has {name} but not {missing}: not a header of any known fork.",
                field=name,
                block=_num(block),
            )
        items.append(hi(value) if kind == "int" else hb(value))
    return items


def header_hash(block: dict[str, Any]) -> bytes:
    return keccak(rlp.encode(header_fields(block)))


def _num(block: dict[str, Any]) -> int | None:
    try:
        return hi(block["number"])
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Header:
    """A header whose hash we recomputed ourselves: these fields are what the chain commits to."""

    number: int
    hash: str
    parent_hash: str
    state_root: str
    receipts_root: str
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "hash": self.hash,
            "parent_hash": self.parent_hash,
            "state_root": self.state_root,
            "receipts_root": self.receipts_root,
            "timestamp": self.timestamp,
        }


def verify_header(
    block: dict[str, Any],
    *,
    number: int | None = None,
    parent_hash: str | None = None,
    expected_hash: str | None = None,
) -> Header:
    """Recompute the block hash from the header fields and check it against the hash the RPC gave,
    the number asked for, the parent we already verified and (for a checkpoint) a trusted hash."""
    if not isinstance(block, dict):
        raise VerificationError(
            f"The RPC returned no block {number if number is not None else ''}."
        )
    n = _num(block)
    if n is None:
        raise VerificationError("Block header lacks a number.", field="number")
    if number is not None and n != number:
        raise VerificationError(
            f"Asked for block {number}, the RPC returned block {n}.", field="number", block=number
        )
    computed = hx(header_hash(block))
    claimed = str(block.get("hash", "")).lower()
    if computed != claimed:
        raise VerificationError(
            f"Block {n}: the header fields hash to {computed[:18]}…, not the {claimed[:18]}… the RPC "
            "claims (a field of the header was altered).",
            field="hash",
            block=n,
        )
    if expected_hash is not None and computed != expected_hash.lower():
        raise VerificationError(
            f"Block {n} is {computed[:18]}…, not the trusted checkpoint {expected_hash[:18]}….",
            field="checkpoint",
            block=n,
        )
    ph = hx(hb(block["parentHash"]))
    if parent_hash is not None and ph != parent_hash.lower():
        raise VerificationError(
            f"Block {n} names parent {ph[:18]}…, but the verified block {n - 1} is "
            f"{parent_hash[:18]}….",
            field="parentHash",
            block=n,
        )
    return Header(
        n,
        computed,
        ph,
        hx(hb(block["stateRoot"])),
        hx(hb(block["receiptsRoot"])),
        hi(block["timestamp"]),
    )


# -- receipts ------------------------------------------------------------------------------------


def _log_item(log: dict[str, Any]) -> list[Any]:
    return [hb(log["address"]), [hb(t) for t in log["topics"]], hb(log["data"])]


def encode_receipt(receipt: dict[str, Any]) -> bytes:
    """The consensus encoding of one receipt: rlp([status, cumulativeGas, bloom, logs]), prefixed by
    its type byte unless legacy (EIP-2718). OP-Stack deposit receipts (type 0x7e) append
    depositNonce (since Regolith) and depositReceiptVersion (since Canyon) when present."""
    tx_type = hi(receipt.get("type", 0) or 0)
    if receipt.get("status") is not None:
        first: Any = hi(receipt["status"])
    else:  # pre-Byzantium: the intermediate state root
        first = hb(receipt["root"])
    items: list[Any] = [
        first,
        hi(receipt["cumulativeGasUsed"]),
        hb(receipt["logsBloom"]),
        [_log_item(lg) for lg in receipt.get("logs", [])],
    ]
    if tx_type == DEPOSIT_TX_TYPE:
        if receipt.get("depositNonce") is not None:
            items.append(hi(receipt["depositNonce"]))
            if receipt.get("depositReceiptVersion") is not None:
                items.append(hi(receipt["depositReceiptVersion"]))
    payload = rlp.encode(items)
    return payload if tx_type == 0 else bytes([tx_type]) + payload


def receipts_root(receipts: Sequence[dict[str, Any]]) -> bytes:
    t = HexaryTrie({})
    for i, r in enumerate(receipts):
        t[rlp.encode(i)] = encode_receipt(r)
    return bytes(t.root_hash)


def verify_receipts(header: Header, receipts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check a block's full receipt list against its verified header; returns it (in index order)."""
    ordered = sorted(receipts, key=lambda r: hi(r["transactionIndex"]))
    for i, r in enumerate(ordered):
        if hi(r["transactionIndex"]) != i:
            raise VerificationError(
                f"Block {header.number}: receipt list has a gap at index {i}.",
                field="receipts",
                block=header.number,
            )
        if str(r.get("blockHash", header.hash)).lower() != header.hash:
            raise VerificationError(
                f"Block {header.number}: a receipt names another block.",
                field="receipts",
                block=header.number,
            )
    root = hx(receipts_root(ordered))
    if root != header.receipts_root:
        raise VerificationError(
            f"Block {header.number}: the receipts hash to {root[:18]}…, not the header's "
            f"receiptsRoot {header.receipts_root[:18]}… (an event was altered, added or dropped).",
            field="receiptsRoot",
            block=header.number,
        )
    return ordered


# -- state proofs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    address: str
    nonce: int
    balance: int
    storage_root: str
    code_hash: str
    exists: bool
    storage: dict[str, int]


def slot_key(slot: int | str) -> str:
    """A storage key as 32-byte hex (anvil refuses shorter keys)."""
    n = slot if isinstance(slot, int) else int(str(slot), 16)
    return "0x" + n.to_bytes(32, "big").hex()


def _proof_get(
    root: bytes, key: bytes, proof: Sequence[Any], what: str, block: int | None
) -> bytes:
    try:
        return bytes(HexaryTrie.get_from_proof(root, key, [rlp.decode(hb(p)) for p in proof]))
    except (BadTrieProof, rlp.DecodingError, ValueError, KeyError, IndexError) as e:
        raise VerificationError(
            f"The proof of {what} does not lead to the verified state root ({type(e).__name__}).",
            field="proof",
            block=block,
        ) from e


def verify_account_proof(
    header: Header, address: str, proof: dict[str, Any], slots: Sequence[int | str] = ()
) -> Account:
    """Walk an `eth_getProof` answer from the header's stateRoot: the account (or its absence) and
    each asked-for storage slot (absent = 0). The values returned are the proven ones, never the
    RPC's own claims (which are checked against them)."""
    addr = hb(address)
    raw = _proof_get(
        hb(header.state_root),
        keccak(addr),
        proof.get("accountProof", []),
        f"account {address}",
        header.number,
    )
    if raw:
        nonce_b, balance_b, sroot, chash = rlp.decode(raw)
        acct = (
            int.from_bytes(nonce_b, "big"),
            int.from_bytes(balance_b, "big"),
            bytes(sroot),
            bytes(chash),
        )
    else:
        acct = (0, 0, EMPTY_TRIE_ROOT, keccak(b""))
    nonce, balance, sroot, chash = acct
    claims = {"nonce": nonce, "balance": balance}
    for name, value in claims.items():
        if name in proof and hi(proof[name]) != value:
            raise VerificationError(
                f"The RPC says account {address} has {name} {hi(proof[name])}; the proof says {value}.",
                field=name,
                block=header.number,
            )
    if proof.get("storageHash") and raw and hb(proof["storageHash"]) != sroot:
        raise VerificationError(
            f"The RPC's storage root for {address} is not the proven one.",
            field="storageHash",
            block=header.number,
        )
    wanted = {slot_key(s) for s in slots}
    storage: dict[str, int] = {}
    for sp in proof.get("storageProof", []):
        key = slot_key(sp["key"])
        value_raw = _proof_get(
            sroot, keccak(hb(key)), sp.get("proof", []), f"slot {key} of {address}", header.number
        )
        value = int.from_bytes(rlp.decode(value_raw), "big") if value_raw else 0
        if hi(sp.get("value", "0x0")) != value:
            raise VerificationError(
                f"The RPC says slot {key} of {address} is {hi(sp['value'])}; the proof says {value}.",
                field="storage",
                block=header.number,
            )
        storage[key] = value
    missing = wanted - set(storage)
    if missing:
        raise VerificationError(
            f"The RPC left out the proof of slot {sorted(missing)[0]} of {address}.",
            field="storage",
            block=header.number,
        )
    return Account(hx(addr), nonce, balance, hx(sroot), hx(chash), bool(raw), storage)


def mapping_slot(key: int | str | bytes, slot: int) -> int:
    """Storage slot of `mapping[key]` declared at `slot` (Solidity layout: keccak(pad(key) . pad(slot)))."""
    if isinstance(key, bytes):
        k = key.rjust(32, b"\0")
    elif isinstance(key, str):
        k = hb(key).rjust(32, b"\0")
    else:
        k = int(key).to_bytes(32, "big")
    return int.from_bytes(keccak(k + int(slot).to_bytes(32, "big")), "big")
