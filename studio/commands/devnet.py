"""studio devnet up | down | status | reset | faucet — the embedded anvil devnet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from studio.chain.results import DevnetState, Transfer
from studio.commands import arg, operation
from studio.core.errors import InvalidInput, Suggestion

if TYPE_CHECKING:
    from studio.app import Studio


def _devnet(studio: Studio) -> Any:
    from studio.chain.devnet import Devnet

    return Devnet(studio.paths, events=studio.events)


def _state(st: dict[str, Any]) -> DevnetState:
    return DevnetState.from_dict(st)


@operation(
    "devnet up",
    "Start the embedded devnet (anvil) in the background; its state persists in the data home.",
)
def devnet_up(studio: Studio) -> DevnetState:
    return _state(_devnet(studio).up())


@operation("devnet down", "Stop the embedded devnet (its state is saved first).")
def devnet_down(studio: Studio) -> DevnetState:
    return _state(_devnet(studio).down())


@operation("devnet status", "Show whether the devnet runs, where, and its latest block.")
def devnet_status(studio: Studio) -> DevnetState:
    return _state(_devnet(studio).status())


@operation(
    "devnet reset",
    "Stop the devnet and start over from genesis: forgets its state, deployments and transactions.",
)
def devnet_reset(
    studio: Studio,
    *,
    yes: Annotated[bool, arg("confirm: every devnet balance and contract is lost")] = False,
) -> DevnetState:
    question = "Resetting loses every devnet balance, contract and journal entry."
    if not yes and not studio.prompter.confirm(f"{question} Reset the devnet?"):
        raise InvalidInput(question, suggest=Suggestion("devnet reset", {"yes": True}))
    return _state(_devnet(studio).reset(store=studio.store))


@operation("devnet faucet", "Send devnet OPEN from dev account 0 to ADDRESS.")
def devnet_faucet(
    studio: Studio,
    address: Annotated[str, arg(metavar="ADDRESS")],
    amount: Annotated[str, arg("in OPEN (e.g. 10 or 0.5) or wei (e.g. 100wei)", metavar="AMOUNT")],
) -> Transfer:
    from studio.chain.client import ChainClient
    from studio.chain.networks import parse_open

    wei = parse_open(amount)
    client = ChainClient.for_devnet(studio)
    res = _devnet(studio).faucet(address, wei, pipeline=client.tx)
    bal = client.balance(address)
    return Transfer(tx=res, sender="", to="", amount_wei=wei, balance_wei=int(bal))
