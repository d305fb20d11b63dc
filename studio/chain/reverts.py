"""Revert reasons in plain words: Error(string), Panic(uint256) and the contracts' custom errors
(learned from their ABIs), decoded from the data a node returns with a refusal; and what a sent
transaction comes back as (TxResult, or TxReverted when it was mined but reverted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector

from studio.core.errors import ChainError

PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function",
}


@dataclass
class _ErrorAbi:
    name: str
    types: list[str]
    names: list[str] = field(default_factory=list)


def _abi_type(inp: dict[str, Any]) -> str:
    t = str(inp["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp.get("components", [])) + ")" + t[5:]
    return t


def to_hex(b: Any) -> str:
    if isinstance(b, str):
        return b if b.startswith("0x") else "0x" + b
    return "0x" + bytes(b).hex()


def revert_data(e: BaseException) -> Any:
    """The 0x… revert data carried by a web3 exception, wherever this node put it."""
    data = getattr(e, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return data
    resp = getattr(e, "rpc_response", None)
    if isinstance(resp, dict):
        err = resp.get("error") or {}
        d = err.get("data") if isinstance(err, dict) else None
        if isinstance(d, dict):
            d = d.get("data")
        if isinstance(d, str) and d.startswith("0x"):
            return d
    return None


@dataclass
class TxResult:
    hash: str
    status: int  # 1 success, 0 reverted
    block: int | None
    gas_used: int | None
    contract_address: str | None
    receipt: Any = None
    nonce: int | None = None
    purpose: str = ""
    reused: bool = False  # True: returned from the journal for an idempotency key, nothing sent

    @property
    def ok(self) -> bool:
        return self.status == 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "status": self.status,
            "block": self.block,
            "gas_used": self.gas_used,
            "contract_address": self.contract_address,
            "nonce": self.nonce,
            "purpose": self.purpose,
            "reused": self.reused,
        }


class TxReverted(ChainError):
    """The transaction was mined but reverted (gas was spent). `.result` holds the TxResult."""

    def __init__(self, message: str, result: TxResult, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


def decode_raw(raw_tx: str) -> dict[str, Any]:
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    return dict(TypedTransaction.from_bytes(HexBytes(raw_tx)).as_dict())


class RevertDecoder:
    """Custom errors by selector; `decode` turns revert data into `Name(arg=value)`."""

    def __init__(self) -> None:
        self._errors: dict[bytes, _ErrorAbi] = {}

    def register(self, abi: list[dict[str, Any]]) -> None:
        for item in abi or []:
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item.get("inputs", [])]
            sel = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            self._errors[bytes(sel)] = _ErrorAbi(
                item["name"], types, [i.get("name", "") for i in item.get("inputs", [])]
            )

    def decode(self, data: Any) -> str | None:
        if data is None:
            return None
        try:
            raw = bytes.fromhex(str(data)[2:]) if isinstance(data, str) else bytes(data)
        except ValueError:
            return None
        if len(raw) < 4:
            return None
        sel, body = raw[:4], raw[4:]
        try:
            if sel == bytes.fromhex("08c379a0"):
                return str(abi_decode(["string"], body)[0])
            if sel == bytes.fromhex("4e487b71"):
                code = int(abi_decode(["uint256"], body)[0])
                return f"panic 0x{code:02x} ({PANIC_CODES.get(code, 'unknown')})"
            err = self._errors.get(sel)
            if err:
                values = abi_decode(err.types, body) if err.types else ()
                parts = []
                for n, v in zip(err.names, values, strict=False):
                    shown = to_hex(v) if isinstance(v, bytes) else v
                    parts.append(f"{n}={shown}" if n else str(shown))
                return f"{err.name}({', '.join(parts)})"
        except Exception:  # noqa: BLE001 - malformed data: fall back to the selector
            pass
        return f"custom error 0x{sel.hex()} (unknown to the studio)"

    def refusal(
        self, e: BaseException, purpose: str, sender: str | None = None, *, embedded: bool = False
    ) -> ChainError:
        """A ChainError saying why the chain refused `purpose`."""
        reason = self.decode(revert_data(e))
        if reason is None:
            msg = getattr(e, "message", None) or (e.args[0] if e.args else str(e))
            reason = str(msg)
        hint = None
        if "insufficient funds" in reason.lower():
            hint = (
                "Top it up: `studio devnet faucet ADDRESS AMOUNT`."
                if embedded
                else "Fund the account with OPEN for gas."
            )
            reason = f"{sender or 'the sender'} has too little OPEN for the value plus gas"
        return ChainError(f"{purpose}: refused by the chain: {reason}.", hint=hint)
