"""studio datanet publish | stake deposit | stake withdraw | stake status | rewards show | rewards claim."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from studio.chain.results import Publication, Rewards, StakeChange, StakeStatus
from studio.commands import address_or_active, arg, operation
from studio.core.errors import Cancelled

if TYPE_CHECKING:
    from studio.app import Studio
    from studio.core.cancel import CancelToken

Role = Literal["node", "validator"]
FROM = "--from"


@operation(
    "datanet publish",
    "Publish a Datanet on chain: create it once, publish the latest snapshot root, bind "
    "contributions. Cancelling (Ctrl-C) before the first transaction is sent changes nothing; "
    "once one is sent it cannot be undone, and publishing again finishes the rest.",
    network=True,
    wallet=True,
)
def datanet_publish(
    studio: Studio,
    name: Annotated[str, arg(metavar="NAME")],
    *,
    version: Annotated[
        int | None, arg("publish this snapshot version (default: the latest)")
    ] = None,
    sender: Annotated[
        str | None,
        arg("publish from this account (default: the active one)", metavar="ADDRESS", flags=FROM),
    ] = None,
    yes: Annotated[bool, arg("do not ask for confirmation at a terminal")] = False,
    cancel: CancelToken | None = None,
) -> Publication:
    """Up to several transactions (see datanets_onchain.publish): `cancel` is honoured until the
    first one is sent (store, journal and chain as before); after that the transactions cannot
    be undone, a cancel stops at the next transaction boundary, and a re-run finishes the rest
    without sending anything twice. At a terminal it asks first, saying so (unless `yes`)."""
    from studio.chain import datanets_onchain
    from studio.chain.signers import contributor_signers

    studio.datanets.get(name)  # NotFound with a hint before anything is unlocked
    account = studio.wallet.unlock(sender)
    who = contributor_signers(studio.wallet, studio.store, name, account)
    if not yes and studio.prompter.interactive:
        question = (
            f"Publish '{name}' from {account.address} on {studio.network_name}? "
            + datanets_onchain.IRREVERSIBLE
        )
        if not studio.prompter.confirm(question):
            raise Cancelled("Not published; nothing was sent.")
    res = datanets_onchain.publish(
        studio, account, name, signers=who.signers, version=version, cancel=cancel
    )
    return Publication.from_dict(res, locked=dict(who.locked))


@operation("stake deposit", "Stake OPEN for a role (node or validator).", network=True, wallet=True)
def stake_deposit(
    studio: Studio,
    amount: Annotated[str, arg("in OPEN (e.g. 1000) or wei (e.g. 100wei)", metavar="AMOUNT")],
    *,
    role: Role,
    sender: Annotated[
        str | None,
        arg("stake from this account (default: the active one)", metavar="ADDRESS", flags=FROM),
    ] = None,
) -> StakeChange:
    from studio.chain import staking
    from studio.chain.networks import parse_open

    wei = parse_open(amount)
    account = studio.wallet.unlock(sender)
    res = staking.deposit(studio, account, wei, role)
    return StakeChange.from_dict(res, account=account.address)


@operation(
    "stake withdraw",
    "Unstake: the first run starts the cooldown, a run after the cooldown withdraws.",
    network=True,
    wallet=True,
)
def stake_withdraw(
    studio: Studio,
    amount: Annotated[
        str | None, arg("how much to unstake (default: all of it)", metavar="AMOUNT")
    ] = None,
    *,
    role: Role,
    sender: Annotated[
        str | None,
        arg("the staking account (default: the active one)", metavar="ADDRESS", flags=FROM),
    ] = None,
) -> StakeChange:
    from studio.chain import staking
    from studio.chain.networks import parse_open

    wei = parse_open(amount) if amount else None
    account = studio.wallet.unlock(sender)
    res = staking.withdraw_or_request(studio, account, role, wei)
    return StakeChange.from_dict(res, account=account.address)


@operation(
    "stake status",
    "Show an account's stake per role, pending unstakes and the cooldown.",
    network=True,
)
def stake_status(
    studio: Studio,
    address: Annotated[str | None, arg("default: the active account", metavar="ADDRESS")] = None,
) -> StakeStatus:
    from studio.chain import staking

    return StakeStatus.from_staking(staking.status(studio, address_or_active(studio, address)))


@operation(
    "rewards show", "Show the OPEN an account can claim from the AttributionLedger.", network=True
)
def rewards_show(
    studio: Studio,
    address: Annotated[str | None, arg("default: the active account", metavar="ADDRESS")] = None,
) -> Rewards:
    from studio.chain import staking
    from studio.chain.networks import format_open

    who = address_or_active(studio, address)
    wei = staking.claimable(studio, who)
    return Rewards(address=who, claimable_wei=int(wei), claimable=format_open(wei))


@operation(
    "rewards claim",
    "Claim every OPEN credited to an account by the AttributionLedger.",
    network=True,
    wallet=True,
)
def rewards_claim(
    studio: Studio,
    *,
    sender: Annotated[
        str | None, arg("the account (default: the active one)", metavar="ADDRESS", flags=FROM)
    ] = None,
) -> Rewards:
    from studio.chain import staking

    account = studio.wallet.unlock(sender)
    return Rewards.from_dict(staking.claim(studio, account))
