"""Text for the wallet, devnet, stake and rewards operations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import open_amount, renders, says, table

if TYPE_CHECKING:
    from studio.commands import Context


# -- wallet -------------------------------------------------------------------------------------


def _info_line(i: Any) -> str:
    mark = "*" if i.active else " "
    label = f"  {i.label}" if i.label else ""
    kr = "  [keyring]" if i.remembered else ""
    return f"{mark} {i.address}{label}{kr}"


@renders("wallet create")
def _wallet_create(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Created account {r.address}{' (' + r.label + ')' if r.label else ''}.")
    ctx.say(f"  Keystore: {r.keystore} (scrypt, mode 0600).")
    if r.mnemonic:
        ctx.say(
            "  Recovery phrase — write it down now; it is shown only this once and never stored:"
        )
        ctx.say(f"    {r.mnemonic}")
    if r.active:
        ctx.say("  This is now the active account.")


says("wallet import", lambda r, kw: f"Imported account {r.address}.")


@renders("wallet list")
def _wallet_list(infos: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    table(ctx, infos, _info_line, empty="No accounts yet. Create one with `studio wallet create`.")


@renders("wallet show")
def _wallet_show(i: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"Account {i.address}{'  (active)' if i.active else ''}")
    ctx.say(f"  label:    {i.label or '-'}")
    ctx.say(f"  source:   {i.source or '-'}")
    ctx.say(f"  keystore: {i.path} (kdf {i.kdf})")
    ctx.say(f"  password in OS keyring: {'yes' if i.remembered else 'no'}")


says("wallet use", lambda r, kw: f"Active account: {r.address}.")


@renders("wallet export")
def _wallet_export(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if r.private_key:
        ctx.warn("this is your unencrypted private key: anyone who sees it controls the account.")
    if r.out:
        what = "private key" if r.private_key else "keystore"
        ctx.say(f"Wrote {what} of {r.address} to {r.out} (mode 0600).")
        return
    ctx.say(r.text.rstrip("\n"))


says(
    "wallet balance", lambda b, kw: f"{b.address}: {b.balance} on {b.network} (chain {b.chain_id})"
)


@renders("wallet send")
def _wallet_send(t: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    res = t.tx
    if res.reused:
        how = f"with key {t.key!r}" if t.key else "(the same payment, a few minutes ago)"
        ctx.say(f"Already sent {how}: tx {res.hash} (block {res.block}); nothing sent again.")
        if not t.key:
            ctx.say("To pay the same amount again on purpose, add --again.")
    else:
        ctx.say(
            f"Sent {open_amount(t.amount_wei)} from {t.sender} to {t.to}: tx {res.hash}, block {res.block}, "
            f"gas {res.gas_used:,}."
        )


says("wallet speed-up", lambda res, kw: f"Mined: {res.hash} in block {res.block}.")


@renders("wallet history")
def _wallet_history(rows: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    table(
        ctx,
        rows,
        lambda r: f"  {r.status:<9} nonce {r.nonce:<4} {r.tx_hash}  {r.purpose}",
        empty="No transactions recorded on this network.",
    )


@renders("wallet pending")
def _wallet_pending(rows: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if kw.get("abandon"):
        ctx.say(f"Abandoned {kw['abandon']}: it will never be sent.")
        return
    if table(
        ctx,
        rows,
        lambda r: f"  nonce {r.nonce:<4} {r.tx_hash}  {r.purpose}  (from {r.sender})",
        empty="No signed-but-unsent transactions.",
    ):
        ctx.say(
            "Re-running the command that made one sends it; --abandon TX_HASH drops it instead."
        )


says(
    "wallet forget-chain",
    lambda rows, kw: (
        f"Forgot {len(rows)} journal row(s) and the deployments of chain {kw['chain_id']}."
    ),
)


@renders("wallet keyring")
def _wallet_keyring(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if r.action == "status":
        ctx.say(f"OS keyring: {'usable' if r.usable else 'not usable'} — {r.detail}")
    elif r.action == "remember":
        ctx.say(
            f"The keystore password of {r.address} is now kept in the OS keyring ({r.backend})."
        )
    else:
        ctx.say(
            f"Forgot the password of {r.address}."
            if r.removed
            else f"No password was kept for {r.address}."
        )


# -- devnet -------------------------------------------------------------------------------------


@renders("devnet up")
def _devnet_up(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    from studio.chain.devnet import DEV_ACCOUNTS, DEV_BALANCE_OPEN

    ctx.say(f"Devnet running at {st.url} (chain id {st.chain_id}, block {st.block}).")
    ctx.say(
        f"  {DEV_ACCOUNTS} dev accounts of the test mnemonic hold {DEV_BALANCE_OPEN:,} OPEN each at genesis."
    )
    ctx.say(
        "  Stop it with `studio devnet down`; it keeps every balance and contract across restarts."
    )


@renders("devnet down")
def _devnet_down(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say("Devnet stopped; state saved." if st.stopped else "The devnet was not running.")


@renders("devnet status")
def _devnet_status(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if st.running:
        ctx.say(
            f"Devnet running at {st.url} (chain id {st.chain_id}, pid {st.pid}, block {st.block})."
        )
    else:
        ctx.say(
            f"Devnet stopped (chain id {st.chain_id}); state: {st.state_bytes:,} bytes in {st.state_file}."
        )


@renders("devnet reset")
def _devnet_reset(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(
        f"Devnet reset: removed {len(st.removed or ())} file(s); the next start is a fresh genesis."
    )


@renders("devnet faucet")
def _devnet_faucet(t: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(
        f"Sent {open_amount(t.amount_wei)} to {kw['address']} (tx {t.tx.hash}, block {t.tx.block})."
    )
    ctx.say(f"  Balance now {open_amount(t.balance_wei or 0)}.")


# -- stake / rewards ----------------------------------------------------------------------------


@renders("stake deposit")
def _stake_deposit(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    from studio.chain.networks import parse_open

    ctx.say(
        f"Staked {open_amount(parse_open(kw['amount']))} as {r.role} from {r.account}: tx {r.tx}."
    )
    ctx.say(
        f"  Active {r.role} stake: {open_amount(r.active_wei)} (minimum {open_amount(r.minimum_wei)})."
    )


@renders("stake withdraw")
def _stake_withdraw(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    role = kw["role"]
    if r.action == "requested":
        ctx.say(
            f"Requested unstake of {open_amount(r.amount_wei)} ({role}): tx {r.tx}. "
            f"Withdraw after the cooldown with `studio stake withdraw --role {role}`."
        )
    else:
        ctx.say(f"Withdrew {open_amount(r.amount_wei)} ({role}) to {r.account}: tx {r.tx}.")


@renders("stake status")
def _stake_status(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.say(f"{st.address} (cooldown {st.cooldown_s} s)")
    for role, p in st.roles.items():
        line = (
            f"  {role:9} active {open_amount(p.active_wei)}, minimum {open_amount(p.minimum_wei)}"
        )
        if p.pending_wei:
            left = max(0, p.unlock_at - st.chain_time)
            line += f", unstaking {open_amount(p.pending_wei)} ({'ready' if not left else f'{left} s left'})"
        ctx.say(line + (" — staked" if p.staked else ""))


says("rewards show", lambda r, kw: f"{r.address}: {r.claimable} claimable")


@renders("rewards claim")
def _rewards_claim(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if not r.claimed_wei:
        ctx.say(f"{r.address} has nothing to claim.")
    else:
        ctx.say(f"Claimed {open_amount(r.claimed_wei)} to {r.address}: tx {r.tx}.")
