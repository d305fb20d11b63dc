"""The one pipeline for every write to the chain.

send → (same idempotency key already mined? return it) → lock the sender's nonce (file lock, safe
across processes) → settle the sender's open journal rows (re-broadcast what was signed but maybe
never sent) → chain-id check → EIP-1559 fees → gas estimate × margin (a revert here is decoded and
nothing is signed) → sign → journal row 'signed' with the raw tx, committed → broadcast → 'sent' →
unlock → wait for the receipt → 'mined' / 'failed' with the decoded revert reason.

A crash anywhere after the journal write leaves a row that the next run re-broadcasts byte for byte
(same hash, same nonce), so a transaction is never paid twice."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from eth_utils import to_checksum_address
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

from . import recovery
from .journal import OPEN_STATUSES, Journal, forget_chain
from .networks import parse_address
from .reverts import RevertDecoder, TxResult, TxReverted, decode_raw, revert_data
from .reverts import to_hex as _hex

__all__ = ["OPEN_STATUSES", "Connection", "TxPipeline", "TxResult", "TxReverted", "forget_chain"]

log = logging.getLogger("studio.tx")

GAS_MARGIN = 1.25  # estimate × margin: state can move between estimate and inclusion
from .recovery import FEE_BUMP  # noqa: E402 - one constant, kept where replacements are made

DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei when the node has no suggestion
INTENT_WINDOW_S = 600  # the same payment asked for again within this window is the same payment
PUBLIC_CONFIRMATIONS = 3  # a journaled receipt is trusted on a public network once this deep


class Connection(Protocol):
    """What the pipeline needs from a chain connection (ChainClient is one)."""

    store: Any
    events: Any
    paths: Any
    profile: Any

    @property
    def w3(self) -> Any: ...

    def check_chain_id(self) -> int: ...


def intent_key(sender: str, to: str | None, value: int, data: str = "0x") -> str:
    """The default idempotency key of a payment: who pays whom how much with what data. Sent
    with `key_window_s=INTENT_WINDOW_S`, asking for the same payment again within that window (a
    re-run after a crash or a kill) pays once; `wallet send --again` makes a second payment."""
    body = f"{to_checksum_address(sender)}|{to or ''}|{int(value)}|{data.lower()}"
    return "intent:" + hashlib.sha256(body.encode()).hexdigest()[:32]


class TxPipeline:
    def __init__(self, client: Connection) -> None:
        self.client = client
        self.store = client.store
        self.events = client.events
        self.chain_id = client.profile.chain_id
        self.journal = Journal(client.store, self.chain_id)
        self.reverts = RevertDecoder()
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
        self.reverts.register(abi)

    def decode_revert(self, data: Any) -> str | None:
        """A readable reason for revert data (Error(string), Panic(uint256), registered custom errors)."""
        return self.reverts.decode(data)

    def _refusal(self, e: BaseException, purpose: str, sender: str | None = None) -> ChainError:
        return self.reverts.refusal(e, purpose, sender, embedded=bool(self.client.profile.embedded))

    # -- journal -----------------------------------------------------------------------------
    def _row(self, tx_hash: str) -> dict[str, Any] | None:
        return self.journal.row(tx_hash)

    def row(self, tx_hash: str) -> dict[str, Any] | None:
        """The journal row of a transaction hash, if this studio sent it."""
        return self.journal.row(tx_hash)

    def _set(self, row_id: int, **cols: Any) -> None:
        self.journal.set(row_id, **cols)

    def history(self, sender: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return self.journal.history(parse_address(sender) if sender else None, limit)

    def pending(self, sender: str | None = None) -> list[dict[str, Any]]:
        return self.journal.pending(sender)

    def unsent(self, sender: str | None = None) -> list[dict[str, Any]]:
        """Rows signed and journaled but never handed to a node (a crash, or an RPC that was down)."""
        return self.journal.pending(sender, statuses=("signed",))

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
        """Same chain id, same chain? The embedded devnet after a reset is a new chain: its
        journal is stale (it would re-send old transactions) and is forgotten, with a warning.
        Anywhere else a different genesis is refused: on a public network the RPC is not the chain
        it claims to be; on `custom` the node was reset, and only the user can say so."""
        genesis = _hex(self.w3.eth.get_block(0)["hash"]).lower()
        known = self.journal.genesis()
        if known == genesis:
            return
        if known is not None:
            name = self.client.profile.name
            if not self.client.profile.embedded:
                hint = (
                    "Check the RPC URL (STUDIO_RPC_URL / rpc_urls in config.json)."
                    if name in ("openledger", "openledger-testnet")
                    else "If that node was reset on purpose, forget its journal: "
                    f"`studio wallet forget-chain {self.chain_id}`; otherwise check the RPC URL."
                )
                raise ChainError(
                    f"The RPC for {name} serves a chain with another genesis block than before "
                    f"(chain {self.chain_id}); refusing to sign.",
                    hint=hint,
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
        self.journal.set_genesis(genesis)

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

    def _known(self, tx_hash: str) -> bool:
        """Whether the node has the transaction at all (in a block or in its pool)."""
        try:
            self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return True

    def _trusted(self, row: dict[str, Any]) -> bool:
        """A journaled 'mined' row is reused only if the chain still has its receipt (a devnet
        killed inside its state-dump interval, or any rollback, forgets it), and on a public
        network only PUBLIC_CONFIRMATIONS blocks deep."""
        receipt = self._receipt(row["tx_hash"])
        if receipt is None or int(receipt["status"]) != 1:
            return False
        name = self.client.profile.name
        if name in ("openledger", "openledger-testnet"):
            depth = int(self.w3.eth.block_number) - int(receipt["blockNumber"]) + 1
            return depth >= PUBLIC_CONFIRMATIONS
        return True

    def _finish(self, row: dict[str, Any], receipt: Any) -> TxResult:
        """Record a receipt for `row`; siblings with the same nonce are marked replaced."""
        ok = int(receipt["status"]) == 1
        contract = receipt.get("contractAddress")
        contract = to_checksum_address(contract) if contract else None
        err = None
        if not ok:
            err = self._replay_reason(row, receipt)
        self.journal.record_receipt(
            row,
            ok=ok,
            block=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            contract=contract,
            error=err,
        )
        self.events.emit(
            Event(
                "tx.mined",
                job="tx",
                message=f"{row['purpose']}: mined in block {int(receipt['blockNumber'])}",
                data={"hash": row["tx_hash"], "ok": ok},
            )
        )
        self._after_mined()
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

    def _after_mined(self) -> None:
        """On the embedded devnet, have its state written now: a devnet killed before its next
        periodic dump would otherwise forget a transaction the journal calls mined."""
        hook = getattr(self.client, "after_transaction", None)
        if callable(hook):
            try:
                hook()
            except Exception as e:  # noqa: BLE001 - a missed dump is recovered by _trusted()
                log.warning("could not save the devnet state: %s", e)

    def _replay_reason(self, row: dict[str, Any], receipt: Any) -> str | None:
        """Why a mined transaction reverted: replay it as a call on the state before its block."""
        if int(receipt["gasUsed"]) >= int(row["gas_limit"]):
            return "out of gas"
        tx = decode_raw(row["raw_tx"])
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
            return self.decode_revert(revert_data(e)) or getattr(e, "message", None) or str(e)
        except Web3Exception:
            return None
        return None

    # -- recovery ----------------------------------------------------------------------------
    def _broadcast(self, raw_tx: str) -> None:
        """Hand a signed transaction to the node. Tests replace this to simulate a crash."""
        self.w3.eth.send_raw_transaction(raw_tx)

    def _rebroadcast(self, row: dict[str, Any]) -> bool:
        return recovery.rebroadcast(self, row)

    def settle(self, sender: str) -> list[dict[str, Any]]:
        """Bring the sender's journal up to date with the chain; reports every row it touched
        (see recovery.settle)."""
        return recovery.settle(self, sender)

    def abandon(self, tx_hash: str) -> dict[str, Any]:
        """Drop a signed-but-unsent journal row so it is never sent (see recovery.abandon)."""
        return recovery.abandon(self, tx_hash)

    def speed_up(
        self,
        tx_hash: str,
        *,
        account: Any,
        bump: float = FEE_BUMP,
        cancel: bool = False,
        timeout: float = 120,
    ) -> TxResult:
        """Re-sign a pending transaction with higher fees, or cancel it (see recovery.speed_up)."""
        return recovery.speed_up(
            self, tx_hash, account=account, bump=bump, cancel=cancel, timeout=timeout
        )

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
        key_window_s: float | None = None,
    ) -> TxResult:
        """Sign, journal, broadcast and wait. `key`: an idempotency key; once a transaction with that
        key succeeded, the same call returns it without sending again. With `key_window_s`, only a
        transaction journaled under the key that recently counts (an intent key: the same payment
        an hour later is a new payment)."""
        if not purpose:
            raise InvalidInput("Every transaction needs a purpose (it is shown in the journal).")
        if to is not None:
            to = parse_address(to)
        if isinstance(value, bool) or int(value) < 0:
            raise InvalidInput("The value must be a non-negative number of wei.")
        payload = _hex(data) if data else "0x"
        sender = to_checksum_address(account.address)

        self._check_chain()  # before trusting the journal for `key`: is it still the same chain?
        since = None if key_window_s is None else time.time() - float(key_window_s)
        if key is not None:
            done = self._by_key(key, since)
            if done is not None and done["status"] == "mined" and self._trusted(done):
                return self._result_from_row(done, reused=True)
        with self._nonce_lock(sender):
            self.settle(sender)  # restores rows a rollback lost, re-sends unsent ones (reported)
            if key is not None:
                done = self._by_key(key, since)
                if done is not None and done["status"] == "mined":
                    if not self._trusted(done):  # mined, but not yet deep enough: wait for it
                        self._wait_confirmed(done, timeout)
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
        if self.journal.has_open_before(sender, int(result.nonce or 0)):
            with self._nonce_lock(sender):  # earlier rows re-sent by settle() are mined by now
                self.settle(sender)
        return result

    def _wait_confirmed(self, row: dict[str, Any], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._trusted(row):
            if time.monotonic() >= deadline:
                raise ChainError(
                    f"{row['purpose']}: {row['tx_hash']} is mined but not yet "
                    f"{PUBLIC_CONFIRMATIONS} blocks deep.",
                    hint="Run the command again in a minute.",
                )
            time.sleep(1.0)

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

    def _by_key(self, key: str, since: float | None = None) -> dict[str, Any] | None:
        return self.journal.by_key(key, since)

    def _next_nonce(self, sender: str) -> int:
        chain_pending = int(self.w3.eth.get_transaction_count(sender, "pending"))
        return max(chain_pending, self.journal.next_nonce(sender))

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
        row = self.journal.get(row_id)
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
        return self.journal.insert(
            tx, sender=sender, tx_hash=tx_hash, raw=raw, purpose=purpose, key=key, replaces=replaces
        )

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
            family = self.journal.family(row)
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
