"""The one pipeline for every write to the chain.

send → (same idempotency key already mined? return it) → lock the sender's nonce (file lock, safe
across processes) → settle the sender's open journal rows (re-broadcast what was signed but maybe
never sent) → chain-id check → EIP-1559 fees → gas estimate × margin (a revert here is decoded and
nothing is signed) → sign → journal row 'signed' with the raw tx, committed → broadcast → 'sent' →
unlock → wait for the receipt → 'mined' / 'failed' with the decoded revert reason.

A crash anywhere after the journal write leaves a row that the next run re-broadcasts byte for byte
(same hash, same nonce), so a transaction is never paid twice."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from filelock import FileLock
from web3.exceptions import (
    ContractLogicError,
    TransactionIndexingInProgress,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)

from studio.core.cancel import CancelToken
from studio.core.errors import ChainError, InvalidInput
from studio.core.events import Event

from .networks import parse_address

if TYPE_CHECKING:
    from .client import ChainClient

log = logging.getLogger("studio.tx")

GAS_MARGIN = 1.25  # estimate × margin: state can move between estimate and inclusion
FEE_BUMP = 1.25  # a replacement must pay ≥ 10–12.5 % more; 25 % clears every client's rule
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei when the node has no suggestion
OPEN_STATUSES = ("signed", "sent")

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


def _hex(b: Any) -> str:
    if isinstance(b, str):
        return b if b.startswith("0x") else "0x" + b
    return "0x" + bytes(b).hex()


def _decode_raw(raw_tx: str) -> dict[str, Any]:
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    return dict(TypedTransaction.from_bytes(HexBytes(raw_tx)).as_dict())


def forget_chain(store: Any, chain_id: int) -> None:
    """Drop everything recorded about a chain (used when the devnet is reset to a fresh genesis)."""
    with store.transaction():
        for table in (
            "chain_identity",
            "chain_tx",
            "chain_nonces",
            "deployments",
            "onchain_datanets",
            "onchain_snapshots",
            "onchain_contributions",
            "onchain_models",
        ):
            store.execute(f"DELETE FROM {table} WHERE chain_id = ?", (int(chain_id),))


class TxPipeline:
    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.store = client.store
        self.events = client.events
        self.chain_id = client.profile.chain_id
        self._errors: dict[bytes, _ErrorAbi] = {}
        self._chain_checked = False
        self._block_gas_limit: int | None = None
        self._locks: dict[str, FileLock] = {}
        self.lock_dir = Path(client.paths.home) / "locks"

    @property
    def w3(self) -> Any:
        return self.client.w3

    # -- errors ------------------------------------------------------------------------------
    def register_errors(self, abi: list[dict[str, Any]]) -> None:
        """Learn a contract's custom errors so reverts read `Name(arg=value)` instead of hex."""
        for item in abi or []:
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item.get("inputs", [])]
            sel = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            self._errors[bytes(sel)] = _ErrorAbi(
                item["name"], types, [i.get("name", "") for i in item.get("inputs", [])]
            )

    def decode_revert(self, data: Any) -> str | None:
        """A readable reason for revert data (Error(string), Panic(uint256), registered custom errors)."""
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
                    shown = _hex(v) if isinstance(v, bytes) else v
                    parts.append(f"{n}={shown}" if n else str(shown))
                return f"{err.name}({', '.join(parts)})"
        except Exception:  # noqa: BLE001 - malformed data: fall back to the selector
            pass
        return f"custom error 0x{sel.hex()} (unknown to the studio)"

    def _revert_data(self, e: BaseException) -> Any:
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

    def _refusal(self, e: BaseException, purpose: str, sender: str | None = None) -> ChainError:
        reason = self.decode_revert(self._revert_data(e))
        if reason is None:
            msg = getattr(e, "message", None) or (e.args[0] if e.args else str(e))
            reason = str(msg)
        hint = None
        low = reason.lower()
        if "insufficient funds" in low:
            hint = (
                "Top it up: `studio devnet faucet ADDRESS AMOUNT`."
                if self.client.profile.embedded
                else "Fund the account with OPEN for gas."
            )
            reason = f"{sender or 'the sender'} has too little OPEN for the value plus gas"
        return ChainError(f"{purpose}: refused by the chain: {reason}.", hint=hint)

    # -- journal -----------------------------------------------------------------------------
    def _row(self, tx_hash: str) -> dict[str, Any] | None:
        return self.store.one("SELECT * FROM chain_tx WHERE tx_hash = ?", (tx_hash.lower(),))

    def _set(self, row_id: int, **cols: Any) -> None:
        cols["updated_at"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self.store.transaction():
            self.store.execute(f"UPDATE chain_tx SET {sets} WHERE id = ?", (*cols.values(), row_id))

    def history(self, sender: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if sender:
            return self.store.query(
                "SELECT * FROM chain_tx WHERE chain_id = ? AND sender = ? ORDER BY id DESC LIMIT ?",
                (self.chain_id, parse_address(sender), limit),
            )
        return self.store.query(
            "SELECT * FROM chain_tx WHERE chain_id = ? ORDER BY id DESC LIMIT ?",
            (self.chain_id, limit),
        )

    def pending(self, sender: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM chain_tx WHERE chain_id = ? AND status IN ('signed','sent')"
        params: list[Any] = [self.chain_id]
        if sender:
            q += " AND sender = ?"
            params.append(to_checksum_address(sender))
        return self.store.query(q + " ORDER BY nonce, id", params)

    def _result_from_row(self, row: dict[str, Any], *, reused: bool) -> TxResult:
        receipt = None
        try:
            receipt = self.w3.eth.get_transaction_receipt(row["tx_hash"])
        except (TransactionNotFound, Web3Exception):
            pass
        return TxResult(
            hash=row["tx_hash"],
            status=1 if row["status"] == "mined" else 0,
            block=row["block_number"],
            gas_used=row["gas_used"],
            contract_address=row["contract_address"],
            receipt=receipt,
            nonce=row["nonce"],
            purpose=row["purpose"],
            reused=reused,
        )

    # -- chain checks ------------------------------------------------------------------------
    def _check_chain(self) -> None:
        if not self._chain_checked:
            self.client.check_chain_id()
            self._check_genesis()
            self._chain_checked = True

    def _check_genesis(self) -> None:
        """Same chain id, same chain? A devnet or custom node that was reset makes the journal
        stale (it would re-send old transactions): forget it. On a public network a different
        genesis means the RPC is not the chain it claims to be: refuse."""
        genesis = _hex(self.w3.eth.get_block(0)["hash"]).lower()
        row = self.store.one(
            "SELECT genesis_hash FROM chain_identity WHERE chain_id = ?", (self.chain_id,)
        )
        if row is not None and row["genesis_hash"] == genesis:
            return
        if row is not None:
            name = self.client.profile.name
            if name in ("openledger", "openledger-testnet"):
                raise ChainError(
                    f"The RPC for {name} serves a chain with another genesis block than before; "
                    "refusing to sign.",
                    hint="Check the RPC URL (STUDIO_RPC_URL / rpc_urls in config.json).",
                )
            log.warning("chain %s was reset (new genesis): forgetting its journal", self.chain_id)
            self.events.emit(
                Event(
                    "warning",
                    job="tx",
                    message=f"warning: the {name} chain was reset; its old transactions and "
                    "deployments are forgotten.",
                )
            )
            forget_chain(self.store, self.chain_id)
        with self.store.transaction():
            self.store.execute(
                "INSERT OR REPLACE INTO chain_identity (chain_id, genesis_hash, recorded_at) "
                "VALUES (?,?,?)",
                (self.chain_id, genesis, time.time()),
            )

    def _nonce_lock(self, sender: str) -> FileLock:
        lock = self._locks.get(sender)
        if lock is None:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.lock_dir / f"nonce-{self.chain_id}-{sender.lower()}.lock"))
            self._locks[sender] = lock
        return lock

    def _fees(self) -> tuple[int, int]:
        block = self.w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas") or 0)
        try:
            prio = int(self.w3.eth.max_priority_fee)
        except (Web3Exception, ValueError):
            prio = DEFAULT_PRIORITY_FEE
        prio = max(prio, 1)
        return 2 * base + prio, prio

    def _receipt(self, tx_hash: str) -> Any:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except (TransactionNotFound, TransactionIndexingInProgress):
            return None

    def _known_mined(self, tx_hash: str) -> bool:
        """Before calling a transaction replaced, ask whether the node knows it in a block: marking a
        mined one 'replaced' would let its idempotency key pay twice."""
        try:
            tx = self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return tx.get("blockNumber") is not None

    def _finish(self, row: dict[str, Any], receipt: Any) -> TxResult:
        """Record a receipt for `row`; siblings with the same nonce are marked replaced."""
        ok = int(receipt["status"]) == 1
        contract = receipt.get("contractAddress")
        contract = to_checksum_address(contract) if contract else None
        err = None
        if not ok:
            err = self._replay_reason(row, receipt)
        with self.store.transaction():
            self.store.execute(
                "UPDATE chain_tx SET status = ?, block_number = ?, gas_used = ?, contract_address = ?, "
                "error = ?, updated_at = ? WHERE id = ?",
                (
                    "mined" if ok else "failed",
                    int(receipt["blockNumber"]),
                    int(receipt["gasUsed"]),
                    contract,
                    err,
                    time.time(),
                    row["id"],
                ),
            )
            self.store.execute(
                "UPDATE chain_tx SET status = 'replaced', updated_at = ? WHERE chain_id = ? AND sender = ? "
                "AND nonce = ? AND id != ? AND status IN ('signed','sent')",
                (time.time(), row["chain_id"], row["sender"], row["nonce"], row["id"]),
            )
        self.events.emit(
            Event(
                "tx.mined",
                job="tx",
                message=f"{row['purpose']}: mined in block {int(receipt['blockNumber'])}",
                data={"hash": row["tx_hash"], "ok": ok},
            )
        )
        result = TxResult(
            hash=row["tx_hash"],
            status=1 if ok else 0,
            block=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            contract_address=contract,
            receipt=receipt,
            nonce=row["nonce"],
            purpose=row["purpose"],
        )
        if not ok:
            raise TxReverted(
                f"{row['purpose']}: the transaction {row['tx_hash']} reverted: {err or 'no reason given'}.",
                result,
            )
        return result

    def _replay_reason(self, row: dict[str, Any], receipt: Any) -> str | None:
        """Why a mined transaction reverted: replay it as a call on the state before its block."""
        if int(receipt["gasUsed"]) >= int(row["gas_limit"]):
            return "out of gas"
        tx = _decode_raw(row["raw_tx"])
        call: dict[str, Any] = {
            "from": row["sender"],
            "data": _hex(tx["data"]),
            "value": int(tx["value"]),
            "gas": int(tx["gas"]),
        }
        if row["to_address"]:
            call["to"] = row["to_address"]
        try:
            self.w3.eth.call(call, max(int(receipt["blockNumber"]) - 1, 0))
        except (ContractLogicError, Web3RPCError) as e:
            return self.decode_revert(self._revert_data(e)) or getattr(e, "message", None) or str(e)
        except Web3Exception:
            return None
        return None

    # -- recovery ----------------------------------------------------------------------------
    def _broadcast(self, raw_tx: str) -> None:
        """Hand a signed transaction to the node. Tests replace this to simulate a crash."""
        self.w3.eth.send_raw_transaction(raw_tx)

    def _rebroadcast(self, row: dict[str, Any]) -> None:
        try:
            self._broadcast(row["raw_tx"])
        except Web3RPCError as e:
            msg = str(getattr(e, "message", e)).lower()
            if "already" in msg or "known" in msg or "underpriced" in msg:
                pass  # the node has it (or a faster sibling): fine
            elif "nonce too low" in msg or "nonce" in msg:
                return  # its nonce is taken; settle() decides mined vs replaced
            else:
                self._set(row["id"], status="abandoned", error=str(getattr(e, "message", e))[:500])
                return
        if row["status"] == "signed":
            self._set(row["id"], status="sent")

    def settle(self, sender: str) -> list[dict[str, Any]]:
        """Bring the sender's open journal rows up to date with the chain: record receipts, mark
        replaced ones, re-broadcast the rest (the same bytes, so never a second payment)."""
        sender = to_checksum_address(sender)
        rows = self.pending(sender)
        if not rows:
            return []
        chain_nonce = int(self.w3.eth.get_transaction_count(sender, "latest"))
        done_nonces: set[int] = set()
        for row in rows:
            if row["nonce"] in done_nonces:
                continue
            receipt = self._receipt(row["tx_hash"])
            if receipt is not None:
                try:
                    self._finish(row, receipt)
                except TxReverted:
                    pass
                done_nonces.add(row["nonce"])
        for row in self.pending(sender):
            if row["nonce"] < chain_nonce:
                if self._known_mined(row["tx_hash"]):
                    continue  # mined, its receipt not served yet (a lagging node): wait() records it
                # Its nonce was used by a transaction that none of our rows for it produced.
                self._set(row["id"], status="replaced", error="nonce used by another transaction")
            else:
                self._rebroadcast(row)
        return self.pending(sender)

    # -- sending -----------------------------------------------------------------------------
    def send(
        self,
        account: Any,
        *,
        to: str | None,
        data: bytes | str = b"",
        value: int = 0,
        purpose: str,
        key: str | None = None,
        timeout: float = 120,
        gas: int | None = None,
    ) -> TxResult:
        """Sign, journal, broadcast and wait. `key`: an idempotency key; once a transaction with that
        key succeeded, the same call returns it without sending again."""
        if not purpose:
            raise InvalidInput("Every transaction needs a purpose (it is shown in the journal).")
        if to is not None:
            to = parse_address(to)
        if isinstance(value, bool) or int(value) < 0:
            raise InvalidInput("The value must be a non-negative number of wei.")
        payload = _hex(data) if data else "0x"
        sender = to_checksum_address(account.address)

        self._check_chain()  # before trusting the journal for `key`: is it still the same chain?
        if key is not None:
            done = self._by_key(key)
            if done is not None and done["status"] == "mined":
                return self._result_from_row(done, reused=True)
        with self._nonce_lock(sender):
            self.settle(sender)
            if key is not None:
                done = self._by_key(key)
                if done is not None and done["status"] == "mined":
                    return self._result_from_row(done, reused=True)
                if done is not None and done["status"] in OPEN_STATUSES:
                    row = done
                else:
                    row = self._sign_and_send(
                        account, sender, to, payload, int(value), purpose, key, gas
                    )
            else:
                row = self._sign_and_send(
                    account, sender, to, payload, int(value), purpose, key, gas
                )
        result = self.wait(row["tx_hash"], timeout=timeout)
        if self.store.one(
            "SELECT 1 AS x FROM chain_tx WHERE chain_id = ? AND sender = ? AND nonce < ? "
            "AND status IN ('signed','sent') LIMIT 1",
            (self.chain_id, sender, result.nonce),
        ):
            with self._nonce_lock(sender):  # earlier rows re-sent by settle() are mined by now
                self.settle(sender)
        return result

    def by_key(self, key: str) -> dict[str, Any] | None:
        """The journal row (mined, else in flight) sent under an idempotency key, if any."""
        return self._by_key(key)

    def entry(self, tx_hash: str) -> dict[str, Any] | None:
        """The journal row of a transaction this studio sent, or None."""
        return self._row(tx_hash)

    def check_key_free(self, key: str, *, sender: str, to: str, value: int) -> None:
        """An idempotency key names one transfer: refuse to reuse it for another one (it would
        report the old transfer as sent)."""
        prev = self._by_key(key)
        if prev is not None and (
            prev["to_address"] != to or int(prev["value"]) != value or prev["sender"] != sender
        ):
            raise InvalidInput(
                f"The key {key!r} was already used for another transaction "
                f"({prev['purpose']} from {prev['sender']} to {prev['to_address']}, tx {prev['tx_hash']}).",
                hint="Use a new key for a new transfer.",
            )

    def _by_key(self, key: str) -> dict[str, Any] | None:
        return self.store.one(
            "SELECT * FROM chain_tx WHERE chain_id = ? AND idem_key = ? AND status IN ('mined','signed','sent') "
            "ORDER BY (status = 'mined') DESC, id DESC LIMIT 1",
            (self.chain_id, key),
        )

    def _next_nonce(self, sender: str) -> int:
        chain_pending = int(self.w3.eth.get_transaction_count(sender, "pending"))
        row = self.store.one(
            "SELECT MAX(nonce) AS n FROM chain_tx WHERE chain_id = ? AND sender = ? AND "
            "status IN ('signed','sent')",
            (self.chain_id, sender),
        )
        journal_next = int(row["n"]) + 1 if row and row["n"] is not None else 0
        return max(chain_pending, journal_next)

    def _estimate(self, sender: str, to: str | None, payload: str, value: int, purpose: str) -> int:
        call: dict[str, Any] = {"from": sender, "data": payload, "value": value}
        if to is not None:
            call["to"] = to
        try:
            # "pending": the transaction lands in the next block, whose timestamp is now. Against
            # "latest", an on-demand chain (the embedded anvil) judges time checks (cooldowns,
            # challenge windows) by its last block, which may be hours old.
            est = int(self.w3.eth.estimate_gas(call, "pending"))
        except (ContractLogicError, Web3RPCError) as e:
            raise self._refusal(e, purpose, sender) from e
        limit = int(est * GAS_MARGIN)
        if self._block_gas_limit is None:  # fixed on our chains: ask once per pipeline
            try:
                self._block_gas_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
            except (Web3Exception, KeyError):
                self._block_gas_limit = 0
        if self._block_gas_limit:
            limit = min(limit, self._block_gas_limit)
        return max(limit, est)

    def _sign_and_send(
        self,
        account: Any,
        sender: str,
        to: str | None,
        payload: str,
        value: int,
        purpose: str,
        key: str | None,
        gas: int | None,
    ) -> dict[str, Any]:
        gas_limit = int(gas) if gas else self._estimate(sender, to, payload, value, purpose)
        max_fee, prio = self._fees()
        balance = int(self.w3.eth.get_balance(sender))
        if balance < value + gas_limit * max_fee:  # refuse before signing: nothing to journal
            hint = (
                "Top it up: `studio devnet faucet ADDRESS AMOUNT`."
                if self.client.profile.embedded
                else "Fund the account with OPEN for gas."
            )
            raise ChainError(
                f"{purpose}: {sender} has too little OPEN for the value plus gas "
                f"(needs up to {value + gas_limit * max_fee} wei, has {balance}).",
                hint=hint,
            )
        nonce = self._next_nonce(sender)
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "value": value,
            "data": payload,
            "gas": gas_limit,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": prio,
        }
        if to is not None:
            tx["to"] = to
        row_id = self._journal(account, tx, sender, purpose, key, replaces=None)
        row = self.store.one("SELECT * FROM chain_tx WHERE id = ?", (row_id,))
        assert row is not None
        self._send_row(row, purpose)
        return row

    def _journal(
        self,
        account: Any,
        tx: dict[str, Any],
        sender: str,
        purpose: str,
        key: str | None,
        *,
        replaces: int | None,
    ) -> int:
        if int(tx["chainId"]) != self.chain_id:
            raise ChainError(
                f"Refusing to sign for chain {tx['chainId']} on the {self.client.profile.name} "
                f"network (chain {self.chain_id})."
            )
        signed = account.sign_transaction(tx)
        raw = _hex(signed.raw_transaction)
        tx_hash = _hex(signed.hash).lower()
        now = time.time()
        with self.store.transaction():
            cur = self.store.execute(
                "INSERT INTO chain_tx (chain_id, sender, nonce, tx_hash, raw_tx, to_address, value, gas_limit, "
                "max_fee_per_gas, max_priority_fee_per_gas, purpose, idem_key, status, replaces, created_at, "
                "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'signed',?,?,?)",
                (
                    self.chain_id,
                    sender,
                    int(tx["nonce"]),
                    tx_hash,
                    raw,
                    tx.get("to"),
                    str(tx["value"]),
                    int(tx["gas"]),
                    str(tx["maxFeePerGas"]),
                    str(tx["maxPriorityFeePerGas"]),
                    purpose,
                    key,
                    replaces,
                    now,
                    now,
                ),
            )
            self.store.execute(
                "INSERT INTO chain_nonces (chain_id, address, next_nonce, updated_at) VALUES (?,?,?,?) "
                "ON CONFLICT(chain_id, address) DO UPDATE SET next_nonce = MAX(next_nonce, excluded.next_nonce), "
                "updated_at = excluded.updated_at",
                (self.chain_id, sender, int(tx["nonce"]) + 1, now),
            )
        return int(cur.lastrowid or 0)

    def _send_row(self, row: dict[str, Any], purpose: str) -> None:
        try:
            self._broadcast(row["raw_tx"])
        except ChainError as e:  # RPC unreachable after retries: the signed tx waits in the journal
            raise ChainError(
                f"{purpose}: {e}",
                hint="The signed transaction is saved; running the command again sends that "
                "same transaction (never a second payment).",
            ) from e
        except Web3RPCError as e:
            msg = str(getattr(e, "message", e))
            if "already known" in msg.lower():
                pass
            else:
                self._set(row["id"], status="abandoned", error=msg[:500])
                raise self._refusal(e, purpose, row["sender"]) from e
        self._set(row["id"], status="sent")
        self.events.emit(
            Event(
                "tx.sent",
                job="tx",
                message=f"{purpose}: sent {row['tx_hash']}",
                data={"hash": row["tx_hash"], "nonce": row["nonce"]},
            )
        )
        log.info("sent %s nonce %s: %s", row["tx_hash"], row["nonce"], purpose)

    def wait(
        self, tx_hash: str, *, timeout: float = 120, cancel: CancelToken | None = None
    ) -> TxResult:
        """Wait for the transaction (or a replacement of it) to be mined; ChainError after `timeout`.
        A cancel stops the waiting only: the transaction stays in the journal, still pending."""
        row = self._row(tx_hash)
        if row is None:
            raise ChainError(f"The transaction {tx_hash} is not in this studio's journal.")
        if row["status"] in ("mined", "failed"):
            res = self._result_from_row(row, reused=False)
            if row["status"] == "failed":
                raise TxReverted(
                    f"{row['purpose']}: the transaction {row['tx_hash']} reverted: "
                    f"{row['error'] or 'no reason given'}.",
                    res,
                )
            return res
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            if cancel is not None:
                cancel.check()
            family = self.store.query(
                "SELECT * FROM chain_tx WHERE chain_id = ? AND sender = ? AND nonce = ? AND status IN "
                "('signed','sent','mined','failed') ORDER BY id DESC",
                (row["chain_id"], row["sender"], row["nonce"]),
            )
            for r in family:
                if r["status"] in ("mined", "failed"):
                    return self.wait(r["tx_hash"], timeout=0)
                receipt = self._receipt(r["tx_hash"])
                if receipt is not None:
                    return self._finish(r, receipt)
            if not family:
                now = self._row(tx_hash) or row
                if now["status"] == "abandoned":
                    raise ChainError(
                        f"{row['purpose']}: the node refused {tx_hash}: {now['error'] or 'no reason'}."
                    )
                raise ChainError(
                    f"{row['purpose']}: the transaction {tx_hash} was replaced by another one "
                    "with the same nonce."
                )
            if time.monotonic() >= deadline:
                raise ChainError(
                    f"{row['purpose']}: {tx_hash} was not mined within {timeout:.0f}s; it stays pending.",
                    hint="Run the command again to keep waiting, or speed it up with a higher fee "
                    f"(`studio wallet speed-up {tx_hash}`).",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    # -- contracts ---------------------------------------------------------------------------
    def transact(
        self,
        account: Any,
        contract_fn: Any,
        *,
        value: int = 0,
        purpose: str,
        key: str | None = None,
        timeout: float = 120,
        gas: int | None = None,
    ) -> TxResult:
        """Call a state-changing contract function (a web3 ContractFunction with its arguments)."""
        abi = getattr(contract_fn, "contract_abi", None)
        if abi:
            self.register_errors(abi)
        data = contract_fn._encode_transaction_data()
        return self.send(
            account,
            to=contract_fn.address,
            data=data,
            value=value,
            purpose=purpose,
            key=key,
            timeout=timeout,
            gas=gas,
        )

    def deploy(
        self,
        account: Any,
        abi: list[dict[str, Any]],
        bytecode: str | bytes,
        args: Any = (),
        *,
        purpose: str,
        key: str | None = None,
        timeout: float = 120,
        value: int = 0,
    ) -> TxResult:
        """Deploy a contract; the result's `contract_address` is where it lives."""
        self.register_errors(abi)
        factory = self.w3.eth.contract(abi=abi, bytecode=_hex(bytecode))
        data = factory.constructor(*list(args or ())).data_in_transaction
        return self.send(
            account, to=None, data=data, value=value, purpose=purpose, key=key, timeout=timeout
        )

    # -- replacing ---------------------------------------------------------------------------
    def speed_up(
        self,
        tx_hash: str,
        *,
        account: Any,
        bump: float = FEE_BUMP,
        cancel: bool = False,
        timeout: float = 120,
    ) -> TxResult:
        """Re-sign a pending transaction with the same nonce and higher fees (or, with `cancel`, a
        0-value transfer to oneself) and wait for whichever of them is mined."""
        row = self._row(tx_hash)
        if row is None:
            raise ChainError(f"The transaction {tx_hash} is not in this studio's journal.")
        sender = row["sender"]
        if to_checksum_address(account.address) != sender:
            raise ChainError(f"{tx_hash} was sent by {sender}; unlock that account to replace it.")
        with self._nonce_lock(sender):
            self._check_chain()
            self.settle(sender)
            row = self._row(tx_hash)
            assert row is not None
            if row["status"] not in OPEN_STATUSES:
                return self.wait(tx_hash, timeout=0)
            latest = self.store.one(
                "SELECT * FROM chain_tx WHERE chain_id = ? AND sender = ? AND nonce = ? "
                "AND status IN ('signed','sent') ORDER BY id DESC LIMIT 1",
                (row["chain_id"], sender, row["nonce"]),
            )
            assert latest is not None
            max_fee, prio = self._fees()
            new_prio = max(prio, int(int(latest["max_priority_fee_per_gas"]) * bump) + 1)
            new_max = max(max_fee, int(int(latest["max_fee_per_gas"]) * bump) + 1, new_prio)
            original = _decode_raw(latest["raw_tx"])
            body: dict[str, Any] = {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": int(row["nonce"]),
                "maxFeePerGas": new_max,
                "maxPriorityFeePerGas": new_prio,
            }
            if cancel:
                body.update(to=sender, value=0, data="0x", gas=21000)
                purpose = f"cancel: {row['purpose']}"
            else:
                body.update(
                    value=int(latest["value"]),
                    data=_hex(original["data"]),
                    gas=int(latest["gas_limit"]),
                )
                if latest["to_address"]:
                    body["to"] = latest["to_address"]
                purpose = row["purpose"]
            new_id = self._journal(
                account, body, sender, purpose, row["idem_key"], replaces=row["id"]
            )
            new_row = self.store.one("SELECT * FROM chain_tx WHERE id = ?", (new_id,))
            assert new_row is not None
            self._send_row(new_row, purpose)
        return self.wait(new_row["tx_hash"], timeout=timeout)
