"""studio wallet create | import | list | show | use | export | balance | send | speed-up | history | pending | forget-chain | keyring."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from studio.commands import Context, arg, command
from studio.core.errors import InvalidInput, WalletError


def _read_secret_file(path: str, what: str) -> str:
    """A private key / mnemonic from a file, or from stdin with "-" (never from the command line)."""
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(path).expanduser().read_text("utf-8")
        except OSError as e:
            raise InvalidInput(f"Cannot read the {what} file {path}: {e.strerror or e}.") from e
        except UnicodeDecodeError:  # never echo the bytes: they may be the secret itself
            raise InvalidInput(
                f"The {what} file {path} is not text.",
                hint="Put the key as hex (or the words) in a plain UTF-8 text file.",
            ) from None
    text = text.strip()
    if not text:
        raise InvalidInput(f"The {what} file {path} is empty.")
    return text


def _info_line(i: Any) -> str:
    mark = "*" if i.active else " "
    label = f"  {i.label}" if i.label else ""
    kr = "  [keyring]" if i.remembered else ""
    return f"{mark} {i.address}{label}{kr}"


@command(
    "wallet create",
    "Create an account (random key, or a BIP-39 mnemonic shown once).",
    arg(
        "--mnemonic",
        action="store_true",
        help="derive the key from a new mnemonic and show it once",
    ),
    arg("--words", type=int, default=12, help="mnemonic length: 12, 15, 18, 21 or 24 (default 12)"),
    arg("--label", help="a name for this account"),
    arg(
        "--remember",
        action="store_true",
        help="keep the keystore password in the OS keyring (opt-in)",
    ),
    wallet=True,
)
def wallet_create(ctx: Context, args: argparse.Namespace) -> Any:
    w = ctx.studio.wallet
    password = w.new_password(password_file=ctx.password_file)
    address, phrase = w.create(password, mnemonic=args.mnemonic, label=args.label, words=args.words)
    if args.remember:
        w.unlock(address, password=password, remember_in_keyring=True)
    del password
    ctx.say(f"Created account {address}{' (' + args.label + ')' if args.label else ''}.")
    ctx.say(f"  Keystore: {w.get(address).path} (scrypt, mode 0600).")
    if phrase:
        ctx.say(
            "  Recovery phrase — write it down now; it is shown only this once and never stored:"
        )
        ctx.say(f"    {phrase}")
    if w.active_address() == address:
        ctx.say("  This is now the active account.")
    result: dict[str, Any] = {
        "address": address,
        "label": args.label,
        "active": w.active_address() == address,
    }
    if phrase:
        result["mnemonic"] = phrase
    return result


@command(
    "wallet import",
    "Import an account from a private key file, a mnemonic file or a keystore JSON.",
    arg(
        "--private-key-file",
        metavar="FILE",
        help="file holding the hex private key (- reads stdin)",
    ),
    arg("--mnemonic-file", metavar="FILE", help="file holding the mnemonic words (- reads stdin)"),
    arg("--path", default="m/44'/60'/0'/0/0", help="derivation path for --mnemonic-file"),
    arg("--keystore", metavar="FILE", help="a v3 keystore JSON (its own password is asked)"),
    arg("--label", help="a name for this account"),
    wallet=True,
)
def wallet_import(ctx: Context, args: argparse.Namespace) -> Any:
    sources = [x for x in (args.private_key_file, args.mnemonic_file, args.keystore) if x]
    if len(sources) != 1:
        raise InvalidInput("Give exactly one of --private-key-file, --mnemonic-file or --keystore.")
    w = ctx.studio.wallet
    if args.keystore:
        address = w.import_keystore(
            args.keystore, password_file=ctx.password_file, label=args.label
        )
    else:
        secret = _read_secret_file(
            args.private_key_file or args.mnemonic_file,
            "private key" if args.private_key_file else "mnemonic",
        )
        password = w.new_password(password_file=ctx.password_file)
        if args.private_key_file:
            address = w.import_private_key(secret, password, label=args.label)
        else:
            address = w.import_mnemonic(secret, password, path=args.path, label=args.label)
        del secret, password
    ctx.say(f"Imported account {address}.")
    return {"address": address, "label": args.label, "active": w.active_address() == address}


@command("wallet list", "List the accounts in this wallet (* marks the active one).")
def wallet_list(ctx: Context, args: argparse.Namespace) -> Any:
    infos = ctx.studio.wallet.list()
    if not infos:
        ctx.say("No accounts yet. Create one with `studio wallet create`.")
    for i in infos:
        ctx.say(_info_line(i))
    return [i.to_dict() for i in infos]


@command(
    "wallet show",
    "Show one account (default: the active one).",
    arg("address", nargs="?", metavar="ADDRESS"),
)
def wallet_show(ctx: Context, args: argparse.Namespace) -> Any:
    i = ctx.studio.wallet.get(args.address)
    ctx.say(f"Account {i.address}{'  (active)' if i.active else ''}")
    ctx.say(f"  label:    {i.label or '-'}")
    ctx.say(f"  source:   {i.source or '-'}")
    ctx.say(f"  keystore: {i.path} (kdf {i.kdf})")
    ctx.say(f"  password in OS keyring: {'yes' if i.remembered else 'no'}")
    return i.to_dict()


@command(
    "wallet use",
    "Make ADDRESS the active account (default contributor and signer).",
    arg("address", metavar="ADDRESS"),
)
def wallet_use(ctx: Context, args: argparse.Namespace) -> Any:
    address = ctx.studio.wallet.set_active(args.address)
    ctx.say(f"Active account: {address}.")
    return {"address": address}


@command(
    "wallet export",
    "Export an account: its keystore JSON (default) or, with --private-key, the raw key.",
    arg("address", nargs="?", metavar="ADDRESS"),
    arg("--out", metavar="FILE", help="write to FILE (mode 0600) instead of stdout"),
    arg(
        "--private-key",
        action="store_true",
        help="export the unencrypted private key (asks the password)",
    ),
    wallet=True,
)
def wallet_export(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.core import atomic

    w = ctx.studio.wallet
    info = w.get(args.address)
    if args.private_key:
        _confirm_private_key_export(ctx, args, info.address)
    text = w.export(info.address, private_key=args.private_key, password_file=ctx.password_file)
    if args.private_key:
        ctx.warn("this is your unencrypted private key: anyone who sees it controls the account.")
    if args.out:
        out = Path(args.out).expanduser()
        if out.exists():
            raise InvalidInput(f"{out} already exists.", hint="Choose another --out path.")
        atomic.write_text(out, text if text.endswith("\n") else text + "\n", mode=0o600)
        ctx.say(
            f"Wrote {'private key' if args.private_key else 'keystore'} of {info.address} to {out} (mode 0600)."
        )
        return {"address": info.address, "out": str(out), "private_key": args.private_key}
    if ctx.json:
        return {"address": info.address, "keystore": text.strip()}
    if args.private_key:  # straight to the terminal, never through the quiet/JSON machinery
        print(text.rstrip("\n"), file=sys.stdout, flush=True)
        return None
    ctx.say(text.rstrip("\n"))
    return None


def _confirm_private_key_export(ctx: Context, args: argparse.Namespace, address: str) -> None:
    """A raw key goes only to a terminal or a 0600 file, never into --json, and only after the
    person at the terminal types the confirmation."""
    if ctx.json and not args.out:
        raise InvalidInput(
            "A private key is never part of --json output.",
            hint="Write it to a file instead: --private-key --out FILE",
        )
    if not args.out and not sys.stdout.isatty():
        raise InvalidInput(
            "Refusing to print a private key to something that is not a terminal (a pipe or a file "
            "may keep it).",
            hint="Use --out FILE to write it to a file with mode 0600.",
        )
    if sys.stdin is None or not sys.stdin.isatty():
        raise InvalidInput(
            "Exporting a private key needs a typed confirmation at a terminal.",
            hint="Run it in a terminal; or export the encrypted keystore (without --private-key).",
        )
    print(
        f"This shows the unencrypted private key of {address}: anyone who sees it controls the "
        "account. Type EXPORT to go on: ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    if sys.stdin.readline().strip() != "EXPORT":
        raise InvalidInput("Not confirmed; nothing exported.")


@command(
    "wallet balance",
    "Show the OPEN balance of an account (default: the active one).",
    arg("address", nargs="?", metavar="ADDRESS"),
    network=True,
)
def wallet_balance(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain.networks import format_open

    # any address may be looked up; none given means the active account
    address = ctx.address_or_active(args.address)
    chain = ctx.studio.chain
    wei = chain.balance(address)
    ctx.say(f"{address}: {format_open(wei)} on {chain.profile.name} (chain {chain.chain_id})")
    return {
        "address": address,
        "balance_wei": str(wei),
        "balance": format_open(wei),
        "network": chain.profile.name,
        "chain_id": chain.chain_id,
    }


@command(
    "wallet send",
    "Send OPEN to an address from the active account (or --from).",
    arg("to", metavar="TO"),
    arg("amount", metavar="AMOUNT", help="in OPEN (e.g. 1.5) or wei (e.g. 100wei)"),
    arg("--from", dest="sender", metavar="ADDRESS", help="send from this account"),
    arg(
        "--key",
        help="idempotency key: re-running with the same key never pays twice (default: derived "
        "from sender, recipient and amount, valid for 10 minutes)",
    ),
    arg(
        "--again",
        action="store_true",
        help="pay again on purpose, although the same payment was just made",
    ),
    arg("--timeout", type=float, default=120, help="seconds to wait for the receipt"),
    arg(
        "--remember",
        action="store_true",
        help="keep the keystore password in the OS keyring (opt-in)",
    ),
    network=True,
    wallet=True,
)
def wallet_send(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain.networks import format_open, parse_address, parse_open

    to = parse_address(args.to)
    wei = parse_open(args.amount)
    if wei == 0:
        raise InvalidInput(
            "Sending 0 OPEN only pays gas.",
            hint="Give an amount above 0 (e.g. 1.5); to cancel a pending transaction use `studio wallet speed-up TX --cancel`.",
        )
    s = ctx.studio
    if args.again and args.key:
        raise InvalidInput("--again and --key contradict each other.", hint="Give one of them.")
    key = args.key
    if key is None and not args.again:
        # The same payment asked for twice within a few minutes (a re-run after a crash or a
        # kill) is one payment; --again makes a second one.
        from studio.chain.tx import intent_key

        key = intent_key(s.wallet.get(args.sender).address, to, wei)
    window = None
    if not args.key and not args.again:
        from studio.chain.tx import INTENT_WINDOW_S

        window = INTENT_WINDOW_S
    if args.key:
        # The key names one transfer: reusing it for another one would report the old one as sent.
        prev = s.chain.tx.by_key(args.key)
        sender = s.wallet.get(args.sender).address
        if prev is not None and (
            prev["to_address"] != to or int(prev["value"]) != wei or prev["sender"] != sender
        ):
            raise InvalidInput(
                f"The key {args.key!r} was already used for another transaction "
                f"({prev['purpose']} from {prev['sender']} to {prev['to_address']}, tx {prev['tx_hash']}).",
                hint="Use a new --key for a new transfer.",
            )
    account = s.wallet.unlock(
        args.sender, password_file=ctx.password_file, remember_in_keyring=args.remember
    )
    res = s.chain.tx.send(
        account,
        to=to,
        value=wei,
        purpose=f"send {format_open(wei)}",
        key=key,
        timeout=args.timeout,
        key_window_s=window,
    )
    if res.reused:
        how = f"with key {args.key!r}" if args.key else "(the same payment, a few minutes ago)"
        ctx.say(
            f"Already sent {how}: tx {res.hash} (block {res.block}); nothing sent again.",
        )
        if not args.key:
            ctx.say("To pay the same amount again on purpose, add --again.")
    else:
        ctx.say(
            f"Sent {format_open(wei)} from {account.address} to {to}: tx {res.hash}, block {res.block}, "
            f"gas {res.gas_used:,}."
        )
    return {**res.to_dict(), "from": account.address, "to": to, "amount_wei": str(wei)}


@command(
    "wallet speed-up",
    "Replace a pending transaction with higher fees (or cancel it).",
    arg("tx_hash", metavar="TX_HASH"),
    arg("--cancel", action="store_true", help="replace it with a 0-OPEN transfer to yourself"),
    arg("--timeout", type=float, default=120),
    network=True,
    wallet=True,
)
def wallet_speed_up(ctx: Context, args: argparse.Namespace) -> Any:
    s = ctx.studio
    tx = s.chain.tx
    row = tx._row(args.tx_hash)
    if row is None:
        raise WalletError(
            f"The transaction {args.tx_hash} is not in this studio's journal.",
            hint="See `studio wallet history`.",
        )
    account = s.wallet.unlock(row["sender"], password_file=ctx.password_file)
    res = tx.speed_up(args.tx_hash, account=account, cancel=args.cancel, timeout=args.timeout)
    ctx.say(f"Mined: {res.hash} in block {res.block}.")
    return res.to_dict()


@command(
    "wallet history",
    "Transactions this studio sent on the network (newest first).",
    arg("address", nargs="?", metavar="ADDRESS"),
    arg("--limit", type=int, default=20),
    network=True,
)
def wallet_history(ctx: Context, args: argparse.Namespace) -> Any:
    rows = ctx.studio.chain.tx.history(args.address, limit=args.limit)
    if not rows:
        ctx.say("No transactions recorded on this network.")
    for r in rows:
        ctx.say(f"  {r['status']:<9} nonce {r['nonce']:<4} {r['tx_hash']}  {r['purpose']}")
    keep = (
        "tx_hash",
        "status",
        "sender",
        "nonce",
        "to_address",
        "value",
        "purpose",
        "block_number",
        "gas_used",
        "contract_address",
        "error",
        "idem_key",
        "created_at",
    )
    return [{k: r[k] for k in keep} for r in rows]


@command(
    "wallet pending",
    "Transactions signed and journaled but never sent (e.g. after a crash); --abandon drops one.",
    arg("address", nargs="?", metavar="ADDRESS"),
    arg("--abandon", metavar="TX_HASH", help="drop this signed-but-unsent transaction"),
    network=True,
)
def wallet_pending(ctx: Context, args: argparse.Namespace) -> Any:
    tx = ctx.studio.chain.tx
    if args.abandon:
        res = tx.abandon(args.abandon)
        for h in res["abandoned"]:
            ctx.say(f"Abandoned {h}: it will never be sent.")
        return res
    rows = tx.unsent(args.address)
    if not rows:
        ctx.say("No signed-but-unsent transactions.")
    for r in rows:
        ctx.say(f"  nonce {r['nonce']:<4} {r['tx_hash']}  {r['purpose']}  (from {r['sender']})")
    if rows:
        ctx.say(
            "Re-running the command that made one sends it; `--abandon TX_HASH` drops it instead."
        )
    keep = (
        "tx_hash",
        "sender",
        "nonce",
        "to_address",
        "value",
        "purpose",
        "idem_key",
        "created_at",
    )
    return [{k: r[k] for k in keep} for r in rows]


@command(
    "wallet forget-chain",
    "Forget the journal and deployments of a chain that was reset on purpose (custom networks).",
    arg("chain_id", type=int, metavar="CHAIN_ID"),
    arg("--yes", action="store_true", help="really forget it"),
)
def wallet_forget_chain(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain.journal import forget_chain

    if not args.yes:
        raise InvalidInput(
            f"This forgets every transaction this studio sent on chain {args.chain_id}.",
            hint=f"Add --yes: studio wallet forget-chain {args.chain_id} --yes",
        )
    forget_chain(ctx.studio.store, args.chain_id)
    ctx.say(f"Forgot the journal and deployments of chain {args.chain_id}.")
    return {"chain_id": args.chain_id, "forgotten": True}


@command(
    "wallet keyring",
    "OS keyring for keystore passwords: status, remember ADDRESS, forget ADDRESS.",
    arg("action", choices=["status", "remember", "forget"]),
    arg("address", nargs="?", metavar="ADDRESS"),
    wallet=True,
)
def wallet_keyring(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.chain.keyring_store import keyring_status

    ok, detail = keyring_status()
    if args.action == "status":
        ctx.say(f"OS keyring: {'usable' if ok else 'not usable'} — {detail}")
        return {"usable": ok, "detail": detail}
    w = ctx.studio.wallet
    address = w.get(args.address).address
    if args.action == "remember":
        w.remember_password(address, password_file=ctx.password_file)
        ctx.say(f"The keystore password of {address} is now kept in the OS keyring ({detail}).")
        return {"address": address, "remembered": True}
    removed = w.forget_password(address)
    ctx.say(
        f"Forgot the password of {address}." if removed else f"No password was kept for {address}."
    )
    return {"address": address, "remembered": False}
