"""Typed results of the wallet, devnet, staking and publishing operations (see core/results.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from studio.core.results import HIDDEN, OMIT_NONE, Result, plain


@dataclass(frozen=True)
class Transfer(Result):
    """A payment: the transaction (hash, block, gas…; `reused` when an idempotency key found an
    earlier one) plus who paid whom how much."""

    keys: ClassVar[Mapping[str, str]] = {"sender": "from"}

    tx: Any  # studio.chain.tx.TxResult
    sender: str
    to: str
    amount_wei: int
    balance_wei: int | None = field(default=None, metadata=OMIT_NONE)
    key: str | None = field(default=None, metadata=HIDDEN)  # the idempotency key

    def to_dict(self) -> dict[str, Any]:
        d = self.tx.to_dict()
        d.update(
            {k: v for k, v in super().to_dict().items() if k != "tx" and k not in ("from", "to")}
        )
        if self.sender:
            d["from"] = self.sender
        if self.to:
            d["to"] = self.to
        return d


@dataclass(frozen=True)
class AccountRef(Result):
    """An account that was created, imported or made active."""

    address: str
    label: str | None = field(default=None, metadata=OMIT_NONE)
    active: bool | None = field(default=None, metadata=OMIT_NONE)
    mnemonic: str | None = field(default=None, metadata=OMIT_NONE)  # shown once, never stored
    keystore: str | None = field(default=None, metadata=HIDDEN)  # its keystore file


@dataclass(frozen=True)
class ExportedAccount(Result):
    """`wallet export`: the keystore JSON (safe to back up) or the raw private key."""

    address: str
    private_key: bool
    text: str = field(default="", metadata=HIDDEN)
    out: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.out:
            return {"address": self.address, "out": self.out, "private_key": self.private_key}
        if self.private_key:  # the raw key is never part of --json: it went to the terminal only
            return {"address": self.address, "private_key": True, "shown": "terminal"}
        return {"address": self.address, "keystore": self.text.strip()}


@dataclass(frozen=True)
class Balance(Result):
    address: str
    balance_wei: int
    balance: str
    network: str
    chain_id: int


@dataclass(frozen=True)
class TxRecord(Result):
    """One transaction of the journal (`wallet history`)."""

    tx_hash: str
    status: str
    sender: str
    nonce: int | None
    to_address: str | None
    value: Any
    purpose: str
    block_number: int | None = None
    gas_used: int | None = None
    contract_address: str | None = None
    error: str | None = None
    idem_key: str | None = None
    created_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        for k in self.extra:  # the history keeps exactly the journal's public columns
            d.pop(k, None)
        return d


@dataclass(frozen=True)
class KeyringState(Result):
    """`wallet keyring`: whether the OS keyring is usable, or what was remembered/forgotten."""

    usable: bool | None = field(default=None, metadata=OMIT_NONE)
    detail: str | None = field(default=None, metadata=OMIT_NONE)
    address: str | None = field(default=None, metadata=OMIT_NONE)
    remembered: bool | None = field(default=None, metadata=OMIT_NONE)
    removed: bool = field(default=False, metadata=HIDDEN)  # forget: something was kept before
    backend: str = field(default="", metadata=HIDDEN)  # remember: where it is kept
    action: str = field(default="status", metadata=HIDDEN)


@dataclass(frozen=True)
class DevnetState(Result):
    """The embedded devnet: running or not, where, its state file (fields vary by action)."""

    chain_id: int | None = field(default=None, metadata=OMIT_NONE)
    running: bool | None = field(default=None, metadata=OMIT_NONE)
    url: str | None = field(default=None, metadata=OMIT_NONE)
    pid: int | None = field(default=None, metadata=OMIT_NONE)
    block: int | None = field(default=None, metadata=OMIT_NONE)
    state_file: str | None = field(default=None, metadata=OMIT_NONE)
    state_bytes: int | None = field(default=None, metadata=OMIT_NONE)
    stopped: bool | None = field(default=None, metadata=OMIT_NONE)
    removed: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class Publication(Result):
    """`datanet publish`: what is on chain now and which contributions are bound."""

    datanet: str
    chain_id: int
    network: str
    onchain_id: int
    version: int
    root: str
    records: int
    created: bool
    published: bool
    bound: Mapping[str, int]
    unbound: Mapping[str, int]
    transactions: tuple[str, ...]
    changed: bool
    locked: Mapping[str, str] = field(default_factory=dict)  # held but could not be unlocked


@dataclass(frozen=True)
class StakePosition(Result):
    role: str
    active_wei: int
    pending_wei: int
    unlock_at: int
    minimum_wei: int
    staked: bool


@dataclass(frozen=True)
class StakeChange(Result):
    """A deposit, an unstake request or a withdrawal, and the position after it."""

    tx: str
    role: str
    active_wei: int
    pending_wei: int
    unlock_at: int
    minimum_wei: int
    staked: bool
    action: str | None = field(default=None, metadata=OMIT_NONE)  # requested | withdrawn
    amount_wei: int | None = field(default=None, metadata=OMIT_NONE)
    account: str = field(default="", metadata=HIDDEN)


@dataclass(frozen=True)
class StakeStatus(Result):
    nested: ClassVar[Mapping[str, type[Result]]] = {}

    address: str
    cooldown_s: int
    chain_time: int
    roles: Mapping[str, StakePosition]

    @classmethod
    def from_staking(cls, d: Mapping[str, Any]) -> StakeStatus:
        roles = {k: StakePosition.from_dict(v) for k, v in d["roles"].items()}
        return cls.from_dict(d, roles=roles)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["roles"] = {k: plain(v) for k, v in self.roles.items()}
        return d


@dataclass(frozen=True)
class Rewards(Result):
    """What an account can claim (`rewards show`) or claimed (`rewards claim`)."""

    address: str
    claimable_wei: int | None = field(default=None, metadata=OMIT_NONE)
    claimable: str | None = field(default=None, metadata=OMIT_NONE)
    claimed_wei: int | None = field(default=None, metadata=OMIT_NONE)
    tx: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if self.claimed_wei is None:
            d.pop("tx", None)  # `rewards show` never had one
        return d
