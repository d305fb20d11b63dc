"""studio wallet create | import | list | show | use | export | balance | send | speed-up | history | pending | forget-chain | keyring."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from studio.chain.results import (
    AccountRef,
    Balance,
    ExportedAccount,
    KeyringState,
    Transfer,
    TxRecord,
)
from studio.commands import address_or_active, arg, operation
from studio.core.errors import InvalidInput, Suggestion, WalletError

if TYPE_CHECKING:
    from studio.app import Studio
    from studio.chain.tx import TxResult
    from studio.chain.wallet import AccountInfo

REMEMBER = arg("keep the keystore password in the OS keyring (opt-in)")


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


@operation(
    "wallet create", "Create an account (random key, or a BIP-39 mnemonic shown once).", wallet=True
)
def wallet_create(
    studio: Studio,
    *,
    mnemonic: Annotated[bool, arg("derive the key from a new mnemonic and show it once")] = False,
    words: Annotated[int, arg("mnemonic length: 12, 15, 18, 21 or 24 (default 12)")] = 12,
    label: Annotated[str | None, arg("a name for this account")] = None,
    remember: Annotated[bool, REMEMBER] = False,
) -> AccountRef:
    w = studio.wallet
    password = w.new_password()
    address, phrase = w.create(password, mnemonic=mnemonic, label=label, words=words)
    if remember:
        w.unlock(address, password=password, remember_in_keyring=True)
    del password
    return AccountRef(
        address=address,
        label=label,
        active=w.active_address() == address,
        mnemonic=phrase or None,
        keystore=str(w.get(address).path),
    )


@operation(
    "wallet import",
    "Import an account from a private key file, a mnemonic file or a keystore JSON.",
    wallet=True,
)
def wallet_import(
    studio: Studio,
    *,
    private_key_file: Annotated[
        str | None, arg("file holding the hex private key (- reads stdin)", metavar="FILE")
    ] = None,
    mnemonic_file: Annotated[
        str | None, arg("file holding the mnemonic words (- reads stdin)", metavar="FILE")
    ] = None,
    path: Annotated[str, arg("derivation path for --mnemonic-file")] = "m/44'/60'/0'/0/0",
    keystore: Annotated[
        str | None, arg("a v3 keystore JSON (its own password is asked)", metavar="FILE")
    ] = None,
    label: Annotated[str | None, arg("a name for this account")] = None,
) -> AccountRef:
    sources = [x for x in (private_key_file, mnemonic_file, keystore) if x]
    if len(sources) != 1:
        raise InvalidInput("Give exactly one of --private-key-file, --mnemonic-file or --keystore.")
    w = studio.wallet
    if keystore:
        address = w.import_keystore(keystore, label=label)
    else:
        secret = _read_secret_file(
            private_key_file or mnemonic_file or "",
            "private key" if private_key_file else "mnemonic",
        )
        password = w.new_password()
        if private_key_file:
            address = w.import_private_key(secret, password, label=label)
        else:
            address = w.import_mnemonic(secret, password, path=path, label=label)
        del secret, password
    return AccountRef(address=address, label=label, active=w.active_address() == address)


@operation("wallet list", "List the accounts in this wallet (* marks the active one).")
def wallet_list(studio: Studio) -> list[AccountInfo]:
    return studio.wallet.list()


@operation("wallet show", "Show one account (default: the active one).")
def wallet_show(
    studio: Studio, address: Annotated[str | None, arg(metavar="ADDRESS")] = None
) -> AccountInfo:
    return studio.wallet.get(address)


@operation("wallet use", "Make ADDRESS the active account (default contributor and signer).")
def wallet_use(studio: Studio, address: Annotated[str, arg(metavar="ADDRESS")]) -> AccountRef:
    return AccountRef(address=studio.wallet.set_active(address))


@operation(
    "wallet export",
    "Export an account: its keystore JSON (default) or, with --private-key, the raw key.",
    wallet=True,
)
def wallet_export(
    studio: Studio,
    address: Annotated[str | None, arg(metavar="ADDRESS")] = None,
    *,
    out: Annotated[
        str | None, arg("write to FILE (mode 0600) instead of stdout", metavar="FILE")
    ] = None,
    private_key: Annotated[
        bool, arg("export the unencrypted private key (asks the password)")
    ] = False,
) -> ExportedAccount:
    from studio.core import atomic

    w = studio.wallet
    info = w.get(address)
    if private_key:
        # A raw key goes only to a terminal or a 0600 file (a pipe or a log may keep it; --json
        # never carries it, see ExportedAccount), after the person there confirms.
        if not out and not sys.stdout.isatty():
            raise InvalidInput(
                "Refusing to print a private key to something that is not a terminal.",
                hint="Write it to a file with mode 0600 instead: --private-key --out FILE",
            )
        if not studio.prompter.confirm(
            f"Show the unencrypted private key of {info.address}? Anyone who sees it controls "
            "the account."
        ):
            raise InvalidInput(
                "Not confirmed; nothing exported.",
                hint="Exporting a private key needs a typed confirmation at a terminal; "
                "exporting the encrypted keystore needs none.",
            )
    text = w.export(info.address, private_key=private_key)
    if out:
        dest = Path(out).expanduser()
        if dest.exists():
            raise InvalidInput(f"{dest} already exists.", hint="Choose another --out path.")
        atomic.write_text(dest, text if text.endswith("\n") else text + "\n", mode=0o600)
        return ExportedAccount(address=info.address, private_key=private_key, out=str(dest))
    return ExportedAccount(address=info.address, private_key=private_key, text=text)


@operation(
    "wallet balance", "Show the OPEN balance of an account (default: the active one).", network=True
)
def wallet_balance(
    studio: Studio, address: Annotated[str | None, arg(metavar="ADDRESS")] = None
) -> Balance:
    from studio.chain.networks import format_open

    # any address may be looked up; none given means the active account
    who = address_or_active(studio, address)
    chain = studio.chain
    wei = chain.balance(who)
    return Balance(
        address=who,
        balance_wei=int(wei),
        balance=format_open(wei),
        network=chain.profile.name,
        chain_id=chain.chain_id,
    )


@operation(
    "wallet send",
    "Send OPEN to an address from the active account (or --from).",
    network=True,
    wallet=True,
)
def wallet_send(
    studio: Studio,
    to: Annotated[str, arg(metavar="TO")],
    amount: Annotated[str, arg("in OPEN (e.g. 1.5) or wei (e.g. 100wei)", metavar="AMOUNT")],
    *,
    sender: Annotated[
        str | None, arg("send from this account", metavar="ADDRESS", flags="--from")
    ] = None,
    key: Annotated[
        str | None,
        arg(
            "idempotency key: re-running with the same key never pays twice (default: derived "
            "from sender, recipient and amount, for 10 minutes)"
        ),
    ] = None,
    again: Annotated[
        bool, arg("pay again on purpose, although the same payment was just made")
    ] = False,
    timeout: Annotated[float, arg("seconds to wait for the receipt")] = 120,
    remember: Annotated[bool, REMEMBER] = False,
) -> Transfer:
    from studio.chain.networks import format_open, parse_address, parse_open

    dest = parse_address(to)
    wei = parse_open(amount)
    if wei == 0:
        raise InvalidInput(
            "Sending 0 OPEN only pays gas.",
            hint="Give an amount above 0 (e.g. 1.5); to cancel a pending transaction replace it "
            "with a cancelling one.",
            suggest=Suggestion("wallet speed-up", {"tx_hash": "TX", "cancel_tx": True}),
        )
    s = studio
    if again and key:
        raise InvalidInput("--again and --key contradict each other.", hint="Give one of them.")
    if key:
        s.chain.tx.check_key_free(key, sender=s.wallet.get(sender).address, to=dest, value=wei)
    use_key, window = key, None
    if key is None and not again:
        # The same payment asked for twice within a few minutes (a re-run after a crash or a
        # kill) is one payment; --again makes a second one.
        from studio.chain.tx import INTENT_WINDOW_S, intent_key

        use_key, window = intent_key(s.wallet.get(sender).address, dest, wei), INTENT_WINDOW_S
    account = s.wallet.unlock(sender, remember_in_keyring=remember)
    res = s.chain.tx.send(
        account,
        to=dest,
        value=wei,
        purpose=f"send {format_open(wei)}",
        key=use_key,
        timeout=timeout,
        key_window_s=window,
    )
    return Transfer(tx=res, sender=account.address, to=dest, amount_wei=wei, key=key)


@operation(
    "wallet speed-up",
    "Replace a pending transaction with higher fees (or cancel it).",
    network=True,
    wallet=True,
)
def wallet_speed_up(
    studio: Studio,
    tx_hash: Annotated[str, arg(metavar="TX_HASH")],
    *,
    # Not named `cancel`: that name is the caller's cancel token (CONTEXT_PARAMS), never an option.
    cancel_tx: Annotated[
        bool, arg("replace it with a 0-OPEN transfer to yourself", flags="--cancel")
    ] = False,
    timeout: float = 120,
) -> TxResult:
    tx = studio.chain.tx
    row = tx.entry(tx_hash)
    if row is None:
        raise WalletError(
            f"The transaction {tx_hash} is not in this studio's journal.",
            hint="Its history lists the transactions it sent.",
            suggest=Suggestion("wallet history"),
        )
    account = studio.wallet.unlock(row["sender"])
    return tx.speed_up(tx_hash, account=account, cancel=cancel_tx, timeout=timeout)


@operation(
    "wallet history", "Transactions this studio sent on the network (newest first).", network=True
)
def wallet_history(
    studio: Studio,
    address: Annotated[str | None, arg(metavar="ADDRESS")] = None,
    *,
    limit: int = 20,
) -> list[TxRecord]:
    rows = studio.chain.tx.history(address, limit=limit)
    return [TxRecord.from_dict(r) for r in rows]


@operation(
    "wallet pending",
    "Transactions signed and journaled but never sent (e.g. after a crash); --abandon drops one.",
    network=True,
)
def wallet_pending(
    studio: Studio,
    address: Annotated[str | None, arg(metavar="ADDRESS")] = None,
    *,
    abandon: Annotated[
        str | None, arg("drop this signed-but-unsent transaction", metavar="TX_HASH")
    ] = None,
) -> list[TxRecord]:
    tx = studio.chain.tx
    if abandon:
        tx.abandon(abandon)
        return [TxRecord.from_dict(r) for r in [tx.entry(abandon)] if r is not None]
    return [TxRecord.from_dict(r) for r in tx.unsent(address)]


@operation(
    "wallet forget-chain",
    "Forget the journal and deployments of a chain that was reset on purpose (custom networks).",
)
def wallet_forget_chain(
    studio: Studio,
    chain_id: Annotated[int, arg(metavar="CHAIN_ID")],
    *,
    yes: Annotated[bool, arg("really forget it")] = False,
) -> list[TxRecord]:
    from studio.chain.journal import Journal, forget_chain

    if not yes:
        raise InvalidInput(
            f"This forgets every transaction this studio sent on chain {chain_id}.",
            hint=f"Add --yes: studio wallet forget-chain {chain_id} --yes",
        )
    gone = Journal(studio.store, chain_id).history(limit=1_000_000)
    forget_chain(studio.store, chain_id)
    return [TxRecord.from_dict(r) for r in gone]


@operation(
    "wallet keyring",
    "OS keyring for keystore passwords: status, remember ADDRESS, forget ADDRESS.",
    wallet=True,
)
def wallet_keyring(
    studio: Studio,
    action: Literal["status", "remember", "forget"],
    address: Annotated[str | None, arg(metavar="ADDRESS")] = None,
) -> KeyringState:
    from studio.chain.keyring_store import keyring_status

    ok, detail = keyring_status()
    if action == "status":
        return KeyringState(usable=ok, detail=detail)
    w = studio.wallet
    who = w.get(address).address
    if action == "remember":
        w.remember_password(who)
        return KeyringState(address=who, remembered=True, backend=detail, action=action)
    removed = w.forget_password(who)
    return KeyringState(address=who, remembered=False, removed=removed, action=action)
