"""studio devnet up | down | status | reset | faucet — the embedded anvil devnet."""

from __future__ import annotations

import argparse
from typing import Any

from studio.commands import Context, arg, command


def _devnet(ctx: Context) -> Any:
    from studio.chain.devnet import Devnet

    return Devnet(ctx.studio.paths, events=ctx.studio.events)


def _client(ctx: Context) -> Any:
    from studio.chain.client import ChainClient
    from studio.chain.networks import PROFILES

    s = ctx.studio
    return ChainClient(PROFILES["devnet"], paths=s.paths, store=s.store, events=s.events, studio=s)


@command(
    "devnet up",
    "Start the embedded devnet (anvil) in the background; its state persists in the data home.",
)
def devnet_up(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain.devnet import DEV_ACCOUNTS, DEV_BALANCE_OPEN

    st = _devnet(ctx).up()
    ctx.say(f"Devnet running at {st['url']} (chain id {st['chain_id']}, block {st.get('block')}).")
    ctx.say(
        f"  {DEV_ACCOUNTS} dev accounts of the test mnemonic hold {DEV_BALANCE_OPEN:,} OPEN each at genesis."
    )
    ctx.say(
        "  Stop it with `studio devnet down`; it keeps every balance and contract across restarts."
    )
    return st


@command("devnet down", "Stop the embedded devnet (its state is saved first).")
def devnet_down(ctx: Context, args: argparse.Namespace) -> Any:
    st = _devnet(ctx).down()
    ctx.say("Devnet stopped; state saved." if st["stopped"] else "The devnet was not running.")
    return st


@command("devnet status", "Show whether the devnet runs, where, and its latest block.")
def devnet_status(ctx: Context, args: argparse.Namespace) -> Any:
    st = _devnet(ctx).status()
    if st["running"]:
        ctx.say(
            f"Devnet running at {st['url']} (chain id {st['chain_id']}, pid {st['pid']}, block {st.get('block')})."
        )
    else:
        ctx.say(
            f"Devnet stopped (chain id {st['chain_id']}); state: {st['state_bytes']:,} bytes in {st['state_file']}."
        )
    return st


@command(
    "devnet reset",
    "Stop the devnet and start over from genesis: forgets its state, deployments and transactions.",
    arg("--yes", action="store_true", help="confirm: every devnet balance and contract is lost"),
)
def devnet_reset(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.core.errors import InvalidInput

    if not args.yes:
        raise InvalidInput(
            "Resetting loses every devnet balance, contract and journal entry.",
            hint="Run `studio devnet reset --yes` to confirm.",
        )
    st = _devnet(ctx).reset(store=ctx.studio.store)
    ctx.say(
        f"Devnet reset: removed {len(st['removed'])} file(s); the next start is a fresh genesis."
    )
    return st


@command(
    "devnet faucet",
    "Send devnet OPEN from dev account 0 to ADDRESS.",
    arg("address", metavar="ADDRESS"),
    arg("amount", metavar="AMOUNT", help="in OPEN (e.g. 10 or 0.5) or wei (e.g. 100wei)"),
)
def devnet_faucet(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain.networks import format_open, parse_open

    wei = parse_open(args.amount)
    client = _client(ctx)
    res = _devnet(ctx).faucet(args.address, wei, pipeline=client.tx)
    bal = client.balance(args.address)
    ctx.say(f"Sent {format_open(wei)} to {args.address} (tx {res.hash}, block {res.block}).")
    ctx.say(f"  Balance now {format_open(bal)}.")
    return {**res.to_dict(), "amount_wei": str(wei), "balance_wei": str(bal)}
