"""What the transaction pipeline asks the chain around a send: is this still the chain the journal
knows (chain id, genesis), what fees and gas a transaction needs, which nonce comes next, whether a
transaction is known, mined and deep enough to trust, and why a mined one reverted.

`TxPipeline` (tx.py) inherits these; they read the chain and the journal and write nothing but the
journal's genesis mark (and, after a reset devnet, its forgetting)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from web3.exceptions import (
    ContractLogicError,
    TransactionIndexingInProgress,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)

from studio.core.errors import ChainError
from studio.core.events import Event, EventBus

from .journal import Journal, forget_chain
from .reverts import RevertDecoder, TxResult, decode_raw, revert_data
from .reverts import to_hex as _hex

if TYPE_CHECKING:
    from studio.core.store import Store

    from .tx import Connection

log = logging.getLogger("studio.tx")

GAS_MARGIN = 1.25  # estimate × margin: state can move between estimate and inclusion
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei when the node has no suggestion
PUBLIC_CONFIRMATIONS = 3  # a journaled receipt is trusted on a public network once this deep


class ChainChecks:
    """The read side of TxPipeline (see the module docstring)."""

    client: Connection
    store: Store
    events: EventBus
    chain_id: int
    journal: Journal
    reverts: RevertDecoder
    _chain_checked: bool
    _block_gas_limit: int | None

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

    # -- chain checks ------------------------------------------------------------------------
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
