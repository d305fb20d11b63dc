"""Staking OPEN for a role (node, validator) and collecting rewards from the AttributionLedger.

Unstaking is two steps on chain (request → cooldown → withdraw); `withdraw_or_request` gives the
one command a person expects: withdraw what has cooled down, else start the cooldown."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from studio.core.errors import ChainError, InvalidInput, Suggestion

from . import contracts
from .networks import format_open

if TYPE_CHECKING:
    from .context import OnChain


def role_id(role: str) -> int:
    try:
        return contracts.ROLES[role]
    except KeyError as e:
        raise InvalidInput(
            f"Unknown role {role!r}.", hint="The roles are node and validator."
        ) from e


def position(studio: OnChain, address: str, role: str) -> dict[str, Any]:
    st = contracts.contract(studio.chain, "Staking")
    r = role_id(role)
    active, pending, unlock_at, own_min, locks = st.functions.positionOf(
        to_checksum_address(address), r
    ).call()
    current_min = int(st.functions.minStake(r).call())
    return {
        "role": role,
        "active_wei": int(active),
        "pending_wei": int(pending),
        "unlock_at": int(unlock_at),
        # A position keeps the minimum it was opened under; a new one takes today's.
        "minimum_wei": int(own_min) if int(active) else current_min,
        "open_attributions": int(locks),
        "staked": bool(st.functions.isStaked(to_checksum_address(address), r).call()),
    }


def chain_now(studio: OnChain) -> int:
    """The time the next block will carry (the pending block's). The latest block's timestamp alone
    is stale on a chain that mines on demand (the embedded anvil): with no new transactions there, a
    cooldown would never seem to end."""
    from web3.exceptions import Web3Exception

    eth = studio.chain.w3.eth
    latest = int(eth.get_block("latest")["timestamp"])
    try:
        return max(latest, int(eth.get_block("pending")["timestamp"]))
    except (Web3Exception, KeyError, TypeError, ValueError):  # an RPC without a pending block
        return latest


def status(studio: OnChain, address: str) -> dict[str, Any]:
    st = contracts.contract(studio.chain, "Staking")
    return {
        "address": to_checksum_address(address),
        "cooldown_s": int(st.functions.cooldown().call()),
        "chain_time": chain_now(studio),
        "roles": {name: position(studio, address, name) for name in contracts.ROLES},
    }


def deposit(studio: OnChain, account: Any, amount_wei: int, role: str) -> dict[str, Any]:
    if amount_wei <= 0:
        raise InvalidInput("The stake must be more than 0 OPEN.")
    st = contracts.contract(studio.chain, "Staking")
    r = role_id(role)
    pos = position(studio, account.address, role)
    if pos["active_wei"] + amount_wei < pos["minimum_wei"]:
        raise InvalidInput(
            f"A {role} stake must total at least {format_open(pos['minimum_wei'])}; "
            f"{format_open(amount_wei)} would make it {format_open(pos['active_wei'] + amount_wei)}.",
            hint=f"Stake at least {format_open(pos['minimum_wei'] - pos['active_wei'])}.",
        )
    res = studio.chain.tx.transact(
        account,
        st.functions.stake(r),
        value=int(amount_wei),
        purpose=f"stake {format_open(amount_wei)} as {role}",
    )
    return {"tx": res.hash, **position(studio, account.address, role)}


def request_unstake(
    studio: OnChain, account: Any, role: str, amount_wei: int | None = None
) -> dict[str, Any]:
    st = contracts.contract(studio.chain, "Staking")
    r = role_id(role)
    pos = position(studio, account.address, role)
    if amount_wei is not None and int(amount_wei) <= 0:
        raise InvalidInput(
            "The amount to unstake must be more than 0 OPEN.",
            hint="Leave the amount out to unstake all of it.",
            suggest=Suggestion("stake withdraw", {"role": role}),
        )
    amount = pos["active_wei"] if amount_wei is None else int(amount_wei)
    if amount <= 0:
        raise ChainError(f"{account.address} has no active {role} stake to unstake.")
    if amount > pos["active_wei"]:
        raise InvalidInput(
            f"{account.address} has {format_open(pos['active_wei'])} of active {role} stake; "
            f"{format_open(amount)} is more than that.",
            hint=f"Unstake at most {format_open(pos['active_wei'])}, or leave the amount out to unstake all.",
        )
    left = pos["active_wei"] - amount
    if 0 < left < pos["minimum_wei"]:
        spare = pos["active_wei"] - pos["minimum_wei"]
        raise InvalidInput(
            f"Unstaking {format_open(amount)} would leave {format_open(left)} of {role} stake, below the "
            f"{format_open(pos['minimum_wei'])} minimum.",
            hint="Unstake all of it (leave the amount out)"
            + (f", or at most {format_open(spare)}." if spare > 0 else "."),
        )
    res = studio.chain.tx.transact(
        account,
        st.functions.requestUnstake(r, amount),
        purpose=f"request unstake of {format_open(amount)} ({role})",
    )
    return {
        "tx": res.hash,
        "action": "requested",
        "amount_wei": amount,
        **position(studio, account.address, role),
    }


def withdraw(studio: OnChain, account: Any, role: str) -> dict[str, Any]:
    st = contracts.contract(studio.chain, "Staking")
    pos = position(studio, account.address, role)
    res = studio.chain.tx.transact(
        account,
        st.functions.withdraw(role_id(role)),
        purpose=f"withdraw {format_open(pos['pending_wei'])} unstaked ({role})",
    )
    return {
        "tx": res.hash,
        "action": "withdrawn",
        "amount_wei": pos["pending_wei"],
        **position(studio, account.address, role),
    }


def withdraw_or_request(
    studio: OnChain, account: Any, role: str, amount_wei: int | None = None
) -> dict[str, Any]:
    """Withdraw a cooled-down unstake; with nothing pending, request one (all, or `amount_wei`)."""
    pos = position(studio, account.address, role)
    now = chain_now(studio)
    if pos["pending_wei"] > 0:
        if pos["open_attributions"]:
            raise ChainError(
                f"{format_open(pos['pending_wei'])} is locked while {pos['open_attributions']} attribution(s)"
                " this account recorded are open or challenged.",
                hint="Finalize them once their challenge window has passed, then withdraw.",
            )
        if now < pos["unlock_at"]:
            wait = pos["unlock_at"] - now
            raise ChainError(
                f"{format_open(pos['pending_wei'])} is cooling down; it can be withdrawn in {wait} s "
                f"(at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(pos['unlock_at']))}).",
                hint="Run `studio stake withdraw` again after that.",
            )
        return withdraw(studio, account, role)
    return request_unstake(studio, account, role, amount_wei)


# -- rewards ------------------------------------------------------------------------------------


def claimable(studio: OnChain, address: str) -> int:
    led = contracts.contract(studio.chain, "AttributionLedger")
    return int(led.functions.claimable(to_checksum_address(address)).call())


def claim(studio: OnChain, account: Any) -> dict[str, Any]:
    amount = claimable(studio, account.address)
    if amount == 0:
        return {"address": account.address, "claimed_wei": 0, "tx": None}
    led = contracts.contract(studio.chain, "AttributionLedger")
    res = studio.chain.tx.transact(
        account, led.functions.claim(), purpose=f"claim {format_open(amount)} of rewards"
    )
    return {"address": account.address, "claimed_wei": amount, "tx": res.hash}
