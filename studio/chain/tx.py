"""The one pipeline for every write to the chain.

send → (same idempotency key already mined? return it) → lock the sender's nonce (file lock, safe
across processes) → settle the sender's open journal rows (re-broadcast what was signed but maybe
never sent) → chain-id check → EIP-1559 fees → gas estimate × margin (a revert here is decoded and
nothing is signed) → sign → journal row 'signed' with the raw tx, committed → broadcast → 'sent' →
unlock → wait for the receipt → 'mined' / 'failed' with the decoded revert reason.

A crash anywhere after the journal write leaves a row that the next run re-broadcasts byte for byte
(same hash, same nonce), so a transaction is never paid twice. What the pipeline asks the chain
(genesis, fees, gas, nonces, receipts, trust) lives in tx_checks.py; recovery in recovery.py."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from eth_utils import to_checksum_address
from filelock import FileLock
from web3.exceptions import Web3RPCError

from studio.core.cancel import CancelToken, check
from studio.core.errors import ChainError, InvalidInput
from studio.core.events import Event

from . import recovery
from .journal import OPEN_STATUSES, Journal, forget_chain
from .networks import parse_address
from .reverts import RevertDecoder, TxResult, TxReverted
from .reverts import to_hex as _hex
from .tx_checks import DEFAULT_PRIORITY_FEE, GAS_MARGIN, PUBLIC_CONFIRMATIONS, ChainChecks

__all__ = [
    "DEFAULT_PRIORITY_FEE",
    "GAS_MARGIN",
    "OPEN_STATUSES",
    "PUBLIC_CONFIRMATIONS",
    "Connection",
    "TxPipeline",
    "TxResult",
    "TxReverted",
    "forget_chain",
]

log = logging.getLogger("studio.tx")

from .recovery import FEE_BUMP  # noqa: E402 - one constant, kept where replacements are made

INTENT_WINDOW_S = 600  # the same payment asked for again within this window is the same payment


class Connection(Protocol):
    """What the pipeline needs from a chain connection (ChainClient is one)."""

    store: Any
    events: Any
    paths: Any
    profile: Any

    @property
    def w3(self) -> Any: ...

    def check_chain_id(self) -> int: ...


# What a node says to a transaction it already has: geth "already known", anvil "transaction
# already imported". Such a send went through; abandoning its row would let a re-run pay twice.
ALREADY_HAS_IT = ("already known", "already imported")


def intent_key(sender: str, to: str | None, value: int, data: str = "0x") -> str:
    """The default idempotency key of a payment: who pays whom how much with what data. Sent
    with `key_window_s=INTENT_WINDOW_S`, asking for the same payment again within that window (a
    re-run after a crash or a kill) pays once; `wallet send --again` makes a second payment."""
    body = f"{to_checksum_address(sender)}|{to or ''}|{int(value)}|{data.lower()}"
    return "intent:" + hashlib.sha256(body.encode()).hexdigest()[:32]


class TxPipeline(ChainChecks):
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

    def _nonce_lock(self, sender: str) -> FileLock:
        lock = self._locks.get(sender)
        if lock is None:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.lock_dir / f"nonce-{self.chain_id}-{sender.lower()}.lock"))
            self._locks[sender] = lock
        return lock

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
        cancel: CancelToken | None = None,
    ) -> TxResult:
        """Sign, journal, broadcast and wait. `key`: an idempotency key; once a transaction with that
        key succeeded, the same call returns it without sending again. With `key_window_s`, only a
        transaction journaled under the key that recently counts (an intent key: the same payment
        an hour later is a new payment). `cancel` is honoured until the transaction is signed and
        journaled (nothing is then in the journal or on chain); from then on it is being sent and
        the call waits for its receipt."""
        if not purpose:
            raise InvalidInput("Every transaction needs a purpose (it is shown in the journal).")
        if to is not None:
            to = parse_address(to)
        if isinstance(value, bool) or int(value) < 0:
            raise InvalidInput("The value must be a non-negative number of wei.")
        payload = _hex(data) if data else "0x"
        sender = to_checksum_address(account.address)
        check(cancel)

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
                        account, sender, to, payload, int(value), purpose, key, gas, cancel
                    )
            else:
                row = self._sign_and_send(
                    account, sender, to, payload, int(value), purpose, key, gas, cancel
                )
        result = self.wait(row["tx_hash"], timeout=timeout)
        if self.journal.has_open_before(sender, int(result.nonce or 0)):
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

    def _by_key(self, key: str, since: float | None = None) -> dict[str, Any] | None:
        return self.journal.by_key(key, since)

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
        cancel: CancelToken | None = None,
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
        check(cancel)  # the last moment a cancel leaves nothing behind: next, sign and journal
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
            if any(m in msg.lower() for m in ALREADY_HAS_IT):  # a retried send the node took
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
        cancel: CancelToken | None = None,
    ) -> TxResult:
        """Call a state-changing contract function (a web3 ContractFunction with its arguments);
        `cancel` as in `send`."""
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
            cancel=cancel,
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
