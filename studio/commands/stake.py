"""studio datanet publish | stake deposit | stake withdraw | stake status | rewards show | rewards claim."""

from __future__ import annotations

import argparse
from typing import Any

from studio.commands import Context, arg, command


def _unlock(ctx: Context, address: str | None = None) -> Any:
    return ctx.studio.wallet.unlock(address, password_file=ctx.password_file)


def _contributor_signers(
    ctx: Context, name: str, publisher: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """Unlocked accounts for the snapshot's contributors that this wallet holds, and why each held
    one that could not be unlocked stays locked (address → reason)."""
    from eth_utils import to_checksum_address

    from studio.core.errors import StudioError

    s = ctx.studio
    rows = s.store.query(
        "SELECT DISTINCT r.contributor FROM records r JOIN datanets d ON d.id = r.datanet_id"
        " WHERE d.name = ? AND r.status = 'accepted'",
        (name,),
    )
    wanted = {to_checksum_address(r["contributor"]) for r in rows}
    held = {to_checksum_address(i.address) for i in s.wallet.list()}
    signers: dict[str, Any] = {to_checksum_address(publisher.address): publisher}
    locked: dict[str, str] = {}
    for address in sorted(wanted & held):
        if address in signers:
            continue
        try:
            signers[address] = _unlock(ctx, address)
        except StudioError as e:  # one locked contributor must not stop the publish
            locked[address] = str(e)
            ctx.warn(
                f"cannot unlock contributor {address} ({e}); their records stay unbound for now"
            )
    return signers, locked


@command(
    "datanet publish",
    "Publish a Datanet on chain: create it once, publish the latest snapshot root, bind contributions.",
    arg("name", metavar="NAME"),
    arg(
        "--version",
        type=int,
        default=None,
        help="publish this snapshot version (default: the latest)",
    ),
    arg(
        "--from",
        dest="sender",
        metavar="ADDRESS",
        help="publish from this account (default: the active one)",
    ),
    network=True,
    wallet=True,
)
def datanet_publish(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain import datanets_onchain

    s = ctx.studio
    s.datanets.get(args.name)  # NotFound with a hint before anything is unlocked
    account = _unlock(ctx, args.sender)
    signers, locked = _contributor_signers(ctx, args.name, account)
    res = datanets_onchain.publish(s, account, args.name, signers=signers, version=args.version)
    where = f"{res['network']} (chain {res['chain_id']})"
    if not res["changed"]:
        ctx.say(
            f"'{args.name}' v{res['version']} is already published on {where} as Datanet #{res['onchain_id']}; "
            "nothing to do."
        )
    else:
        if res["created"]:
            ctx.say(f"Created '{args.name}' on {where} as Datanet #{res['onchain_id']}.")
        if res["published"]:
            ctx.say(
                f"Published snapshot v{res['version']}: root {res['root']}, {res['records']} records."
            )
        ctx.say(f"  {len(res['transactions'])} transaction(s): {', '.join(res['transactions'])}")
    for who, n in sorted(res["bound"].items()):
        ctx.say(f"  {who}: {n} contribution(s) bound")
    for who, n in sorted(res["unbound"].items()):
        why = (
            "their account could not be unlocked (see the warning); publish again with their password"
            if who in locked
            else "that contributor's account is not in this wallet; import it and publish again"
        )
        ctx.say(f"  {who}: {n} contribution(s) NOT bound — {why}")
    return {**res, "locked": locked}


@command(
    "stake deposit",
    "Stake OPEN for a role (node or validator).",
    arg("amount", metavar="AMOUNT", help="in OPEN (e.g. 1000) or wei (e.g. 100wei)"),
    arg("--role", choices=("node", "validator"), required=True),
    arg(
        "--from",
        dest="sender",
        metavar="ADDRESS",
        help="stake from this account (default: the active one)",
    ),
    network=True,
    wallet=True,
)
def stake_deposit(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain import staking
    from studio.chain.networks import format_open, parse_open

    wei = parse_open(args.amount)
    account = _unlock(ctx, args.sender)
    res = staking.deposit(ctx.studio, account, wei, args.role)
    ctx.say(f"Staked {format_open(wei)} as {args.role} from {account.address}: tx {res['tx']}.")
    ctx.say(
        f"  Active {args.role} stake: {format_open(res['active_wei'])} (minimum {format_open(res['minimum_wei'])})."
    )
    return res


@command(
    "stake withdraw",
    "Unstake: the first run starts the cooldown, a run after the cooldown withdraws.",
    arg("amount", metavar="AMOUNT", nargs="?", help="how much to unstake (default: all of it)"),
    arg("--role", choices=("node", "validator"), required=True),
    arg(
        "--from",
        dest="sender",
        metavar="ADDRESS",
        help="the staking account (default: the active one)",
    ),
    network=True,
    wallet=True,
)
def stake_withdraw(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain import staking
    from studio.chain.networks import format_open, parse_open

    wei = parse_open(args.amount) if args.amount else None
    account = _unlock(ctx, args.sender)
    res = staking.withdraw_or_request(ctx.studio, account, args.role, wei)
    if res["action"] == "requested":
        ctx.say(
            f"Requested unstake of {format_open(res['amount_wei'])} ({args.role}): tx {res['tx']}. "
            f"Withdraw after the cooldown with `studio stake withdraw --role {args.role}`."
        )
    else:
        ctx.say(
            f"Withdrew {format_open(res['amount_wei'])} ({args.role}) to {account.address}: tx {res['tx']}."
        )
    return res


@command(
    "stake status",
    "Show an account's stake per role, pending unstakes and the cooldown.",
    arg("address", metavar="ADDRESS", nargs="?", help="default: the active account"),
    network=True,
)
def stake_status(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain import staking
    from studio.chain.networks import format_open

    address = ctx.address_or_active(args.address)
    st = staking.status(ctx.studio, address)
    ctx.say(f"{st['address']} (cooldown {st['cooldown_s']} s)")
    for role, p in st["roles"].items():
        line = f"  {role:9} active {format_open(p['active_wei'])}, minimum {format_open(p['minimum_wei'])}"
        if p["pending_wei"]:
            left = max(0, p["unlock_at"] - st["chain_time"])
            line += f", unstaking {format_open(p['pending_wei'])} ({'ready' if not left else f'{left} s left'})"
        ctx.say(line + (" — staked" if p["staked"] else ""))
    return st


@command(
    "rewards show",
    "Show the OPEN an account can claim from the AttributionLedger.",
    arg("address", metavar="ADDRESS", nargs="?", help="default: the active account"),
    network=True,
)
def rewards_show(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain import staking
    from studio.chain.networks import format_open

    address = ctx.address_or_active(args.address)
    wei = staking.claimable(ctx.studio, address)
    ctx.say(f"{address}: {format_open(wei)} claimable")
    return {"address": address, "claimable_wei": wei, "claimable": format_open(wei)}


@command(
    "rewards claim",
    "Claim every OPEN credited to an account by the AttributionLedger.",
    arg("--from", dest="sender", metavar="ADDRESS", help="the account (default: the active one)"),
    network=True,
    wallet=True,
)
def rewards_claim(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain import staking
    from studio.chain.networks import format_open

    account = _unlock(ctx, args.sender)
    res = staking.claim(ctx.studio, account)
    if res["claimed_wei"] == 0:
        ctx.say(f"{account.address} has nothing to claim.")
    else:
        ctx.say(f"Claimed {format_open(res['claimed_wei'])} to {account.address}: tx {res['tx']}.")
    return res
