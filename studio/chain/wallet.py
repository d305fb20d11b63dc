"""The wallet: several accounts, each a keystore v3 file; unlock decrypts once into an UnlockedAccount.

Password sources, in order: the explicit argument → a password file → env STUDIO_PASSWORD (with a
warning) → the OS keyring if the user opted in for that account → a prompt when stdin is a terminal →
a WalletError saying how to give it. The password stops at `unlock`; nothing below ever sees it."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.datastructures import SignedMessage, SignedTransaction
from eth_account.messages import encode_defunct

from studio.core.changes import Changes
from studio.core.errors import (
    AlreadyExists,
    ConfigError,
    InvalidInput,
    NotFound,
    PasswordNeeded,
    WalletError,
    WrongPassword,
)
from studio.core.events import Event, EventBus
from studio.core.paths import Paths
from studio.core.prompt import NoPrompter, Prompter

from . import keyring_store, keystore
from .networks import parse_address

if TYPE_CHECKING:
    from studio.core.config import Config
    from studio.core.facade import DataHome

log = logging.getLogger("studio.wallet")

PASSWORD_ENV = "STUDIO_PASSWORD"


def take_env_password() -> str | None:
    """$STUDIO_PASSWORD, removed from the environment as it is read, so no child process
    (anvil, training jobs) and no later /proc/PID/environ reader sees it. The Wallet keeps it
    in memory for later unlocks."""
    return os.environ.pop(PASSWORD_ENV, None) or None


MIN_PASSWORD_LEN = 8
DEFAULT_PATH = "m/44'/60'/0'/0/0"
KEYRING_CONFIG_KEY = (
    "keyring_accounts"  # config.extra: addresses whose password the user let us keep
)


def _boot_clock() -> float:
    """Seconds on a clock that keeps counting while the machine sleeps (CLOCK_BOOTTIME on
    Linux; time.monotonic stops during suspend there, so an unlocked key would outlive its
    timeout by the length of every suspend). Elsewhere monotonic counts sleep already."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        try:
            return time.clock_gettime(boottime)
        except OSError:
            pass
    return time.monotonic()


MIN_UNLOCK_TIMEOUT_S = 1.0
MAX_UNLOCK_TIMEOUT_S = 86_400.0


class UnlockedAccount:
    """A decrypted key that signs until it locks: after `timeout_s` without use, or on `lock()`."""

    def __init__(
        self, private_key: bytes, *, timeout_s: float | None, label: str | None = None
    ) -> None:
        self._acct: Any = Account.from_key(private_key)
        self.address: str = str(self._acct.address)
        self.label = label
        self.timeout_s = timeout_s
        self._last_use = _boot_clock()
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"<UnlockedAccount {self.address} {'locked' if self.locked else 'unlocked'}>"

    @property
    def locked(self) -> bool:
        if self._acct is None:
            return True
        return self.timeout_s is not None and _boot_clock() - self._last_use > self.timeout_s

    def lock(self) -> None:
        with self._mutex:
            self._acct = None

    def _signer(self) -> Any:
        with self._mutex:
            if (
                self._acct is not None
                and self.timeout_s is not None
                and _boot_clock() - self._last_use > self.timeout_s
            ):
                self._acct = None
            if self._acct is None:
                raise WalletError(
                    f"The account {self.address} is locked.",
                    hint="Unlock it again (the password is asked once per session).",
                )
            self._last_use = _boot_clock()
            return self._acct

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        return self._signer().sign_transaction(tx)  # type: ignore[no-any-return]

    def sign_message(self, message: bytes | str) -> SignedMessage:
        """EIP-191 (personal_sign) signature of `message`."""
        data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        return self._signer().sign_message(encode_defunct(primitive=data))  # type: ignore[no-any-return]

    def sign_typed_data(
        self, domain: dict[str, Any], types: dict[str, Any], message: dict[str, Any]
    ) -> SignedMessage:
        """EIP-712 signature. `types` may include EIP712Domain; it is derived from `domain` anyway."""
        types = {k: v for k, v in types.items() if k != "EIP712Domain"}
        return self._signer().sign_typed_data(
            domain_data=domain,
            message_types=types,  # type: ignore[no-any-return]
            message_data=message,
        )


@dataclass
class AccountInfo:
    address: str
    label: str | None
    created_at: float | None
    source: str | None
    kdf: str
    path: str
    active: bool
    remembered: bool  # password kept in the OS keyring (opt-in)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_password_file(path: str | os.PathLike[str]) -> str:
    try:
        text = Path(path).expanduser().read_text("utf-8")
    except OSError as e:
        raise WalletError(f"Cannot read the password file {path}: {e.strerror or e}.") from e
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise WalletError(f"The password file {path} is empty.")
    return text


def _check_address(address: str) -> str:
    return parse_address(address)


class Wallet:
    def __init__(
        self,
        paths: Paths,
        config: Config,
        *,
        save_config: Callable[[], None] | None = None,
        events: EventBus | None = None,
        prompter: Prompter | None = None,
    ) -> None:
        self.paths = paths
        self.prompter: Prompter = prompter or NoPrompter()
        self.config = config
        self._save_config = save_config or (lambda: config.save(paths.config))
        self.events = events or EventBus()
        self.folder = paths.keystores
        self._taken_env_password: str | None = None
        self._unlocked: dict[str, UnlockedAccount] = {}

    @classmethod
    def for_studio(cls, home: DataHome) -> Wallet:
        return cls(
            home.paths,
            home.config,
            save_config=home.save_config,
            events=home.events,
            prompter=home.prompter,
        )

    # -- listing -----------------------------------------------------------------------------
    def _docs(self) -> list[tuple[Path, dict[str, Any]]]:
        out = []
        for p in sorted(self.folder.glob("*.json")):
            self._check_file(p)
            try:
                out.append((p, keystore.read(p)))
            except WalletError as e:
                self._warn(f"skipping {p.name}: {e}")
        return out

    def _check_file(self, p: Path) -> None:
        """Report a keystore behind a symlink (it may point anywhere, e.g. at a file someone else
        controls) or readable by other users."""
        seen = self.__dict__.setdefault("_reported_files", set())
        try:
            if p.is_symlink() and (p, "link") not in seen:
                seen.add((p, "link"))
                self._warn(f"the keystore {p.name} is a symbolic link (to {os.readlink(p)})")
            mode = p.stat().st_mode
        except OSError:
            return
        if sys.platform != "win32" and mode & 0o077 and (p, "mode") not in seen:
            seen.add((p, "mode"))
            self._warn(f"the keystore {p.name} can be read by other users; run `chmod 600 {p}`")

    def _remembered(self) -> list[str]:
        v = self.config.extra.get(KEYRING_CONFIG_KEY) or []
        return [str(a) for a in v] if isinstance(v, list) else []

    def _info(self, path: Path, doc: dict[str, Any]) -> AccountInfo:
        address = keystore.validate(doc)
        meta = doc.get(keystore.META_KEY) or {}
        return AccountInfo(
            address=address,
            label=meta.get("label"),
            created_at=meta.get("created_at"),
            source=meta.get("source"),
            kdf=keystore.kdf_of(doc),
            path=str(path),
            active=address == self.config.active_account,
            remembered=address in self._remembered(),
        )

    def list(self) -> list[AccountInfo]:
        infos = [self._info(p, d) for p, d in self._docs()]
        return sorted(infos, key=lambda i: (i.created_at or 0, i.address))

    def get(self, address: str | None = None) -> AccountInfo:
        if address is None:
            address = self.active_address()
            if address is None:
                raise NotFound(
                    "This wallet has no account yet.",
                    hint="Create one with `studio wallet create` or `studio wallet import`.",
                )
        address = _check_address(address)
        path = keystore.keystore_path(self.folder, address)
        if not path.exists():
            raise NotFound(
                f"No account {address} in this wallet.", hint="See `studio wallet list`."
            )
        return self._info(path, keystore.read(path))

    def active_address(self) -> str | None:
        """config.active_account if it is in the wallet, else the only account, else None."""
        active = self.config.active_account
        if active and keystore.keystore_path(self.folder, active).exists():
            return str(active)
        accounts = self.list()
        return accounts[0].address if len(accounts) == 1 else None

    def set_active(self, address: str) -> str:
        address = self.get(address).address
        self.config.active_account = address
        self._save_config()
        self.events.changed(Changes.of(accounts=[address]), job="wallet")
        return address

    # -- creating and importing --------------------------------------------------------------
    def _check_new_password(self, password: str) -> None:
        if not isinstance(password, str) or len(password) < MIN_PASSWORD_LEN:
            raise WalletError(f"The password must have at least {MIN_PASSWORD_LEN} characters.")

    def _store(self, key: bytes, password: str, *, label: str | None, source: str) -> str:
        address = str(Account.from_key(key).address)
        path = keystore.keystore_path(self.folder, address)
        if path.exists():
            raise AlreadyExists(f"The account {address} is already in this wallet.")
        keystore.write(self.folder, keystore.encrypt(key, password, label=label, source=source))
        self._adopt_if_no_active(address)
        self.events.changed(Changes.of(accounts=[address]), job="wallet")
        return address

    def _adopt_if_no_active(self, address: str) -> None:
        """The first account (or the first after the active one was removed) becomes active."""
        active = self.config.active_account
        if not active or not keystore.keystore_path(self.folder, active).exists():
            self.config.active_account = address
            self._save_config()

    def create(
        self, password: str, *, mnemonic: bool = False, label: str | None = None, words: int = 12
    ) -> tuple[str, str | None]:
        """A new account: random key, or a BIP-39 mnemonic (returned once, never stored)."""
        self._check_new_password(password)
        if mnemonic:
            if words not in (12, 15, 18, 21, 24):
                raise InvalidInput("A mnemonic has 12, 15, 18, 21 or 24 words.")
            Account.enable_unaudited_hdwallet_features()
            acct, phrase = Account.create_with_mnemonic(num_words=words, account_path=DEFAULT_PATH)
            return self._store(bytes(acct.key), password, label=label, source="mnemonic"), phrase
        acct = Account.create()
        return self._store(bytes(acct.key), password, label=label, source="random"), None

    def import_private_key(
        self,
        private_key: str | bytes,
        password: str | None = None,
        *,
        password_file: str | None = None,
        label: str | None = None,
    ) -> str:
        """Import a raw key; the password (else the usual sources) encrypts its new keystore."""
        password = self.new_password(password, password_file)
        self._check_new_password(password)
        try:
            if isinstance(private_key, str):
                hexkey = private_key.strip().removeprefix("0x").removeprefix("0X")
                if len(hexkey) != 64:
                    raise ValueError("length")
                key = bytes.fromhex(hexkey)
            else:
                key = bytes(private_key)
            Account.from_key(key)
        except Exception as e:  # noqa: BLE001 - never echo the key itself
            raise InvalidInput("That is not a private key (expected 64 hex digits).") from e
        return self._store(key, password, label=label, source="private-key")

    def import_mnemonic(
        self,
        phrase: str,
        password: str | None = None,
        *,
        path: str = DEFAULT_PATH,
        password_file: str | None = None,
        label: str | None = None,
    ) -> str:
        """Import the account at `path` of a BIP-39 mnemonic (the phrase itself is never stored)."""
        password = self.new_password(password, password_file)
        self._check_new_password(password)
        Account.enable_unaudited_hdwallet_features()
        try:
            acct = Account.from_mnemonic(" ".join(phrase.split()), account_path=path)
        except Exception as e:  # noqa: BLE001 - never echo the phrase
            raise InvalidInput(
                f"That mnemonic or derivation path is not valid ({type(e).__name__}).",
                hint="Check the words (BIP-39 English) and a path like m/44'/60'/0'/0/0.",
            ) from e
        return self._store(bytes(acct.key), password, label=label, source=f"mnemonic {path}")

    def import_keystore(
        self,
        file: str | os.PathLike[str],
        password: str | None = None,
        *,
        password_file: str | None = None,
        label: str | None = None,
    ) -> str:
        """Import a v3 keystore. It is decrypted first (wrong password / damage → nothing written);
        a pbkdf2 or weaker-than-ours scrypt keystore is re-encrypted with our scrypt parameters
        under the same password."""
        src = Path(file).expanduser()
        try:
            doc = json.loads(src.read_text("utf-8"))
        except OSError as e:
            raise WalletError(f"Cannot read {src}: {e.strerror or e}.") from e
        except (ValueError, UnicodeDecodeError) as e:
            raise WalletError(f"{src} is not a keystore JSON file.") from e
        address = keystore.validate(doc, source=f"keystore {src.name}")
        if keystore.keystore_path(self.folder, address).exists():
            raise AlreadyExists(f"The account {address} is already in this wallet.")
        pw = self._resolve_password(address, password, password_file, allow_keyring=False)
        key = keystore.decrypt(doc, pw, source=f"keystore {src.name}")
        if not keystore.weaker_than_ours(doc):
            doc = dict(doc)
            doc[keystore.META_KEY] = {
                "created_at": time.time(),
                "source": f"keystore {src.name}",
                **({"label": label} if label else {}),
            }
            keystore.write(self.folder, doc)
        else:
            keystore.write(
                self.folder, keystore.encrypt(key, pw, label=label, source=f"keystore {src.name}")
            )
            self._warn(
                f"{src.name} used weaker encryption ({keystore.kdf_of(doc)}); the imported copy "
                "is re-encrypted with scrypt (same password)"
            )
        self._adopt_if_no_active(address)
        self.events.changed(Changes.of(accounts=[address]), job="wallet")
        return address

    # -- passwords ---------------------------------------------------------------------------
    def _env_password(self) -> str | None:
        taken = take_env_password()
        if taken:
            self._taken_env_password = taken
        return self._taken_env_password

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.events.emit(Event("warning", job="wallet", message=f"warning: {message}"))

    def _resolve_password(
        self,
        address: str | None,
        password: str | None,
        password_file: str | None,
        *,
        allow_keyring: bool = True,
        allow_env: bool = True,
        confirm: bool = False,
    ) -> str:
        if password is not None:
            return password
        if password_file:
            try:
                mode = Path(password_file).expanduser().stat().st_mode
            except OSError:
                mode = 0
            if sys.platform != "win32" and mode & 0o077:
                self._warn(
                    f"the password file {password_file} can be read by other users; "
                    f"run `chmod 600 {password_file}`"
                )
            return read_password_file(password_file)
        given = self.prompter.given_password()
        if given is not None:
            return given
        env = self._env_password() if allow_env else None
        if env:
            self._warn(
                f"using the keystore password from ${PASSWORD_ENV}; other programs of this "
                "user may read it. Prefer a password file or the OS keyring."
            )
            return env
        if allow_keyring and address and address in self._remembered():
            pw = keyring_store.get_password(address)
            if pw is not None:
                return pw
        who = f" for {address}" if address else ""
        pw = self.prompter.ask_password(f"Keystore password{who}: ", confirm=confirm)
        if pw is not None:
            return pw
        raise PasswordNeeded(
            "No keystore password given.",
            hint=f"Give a password file, set {PASSWORD_ENV}, or run in a terminal to be asked.",
        )

    def new_password(self, password: str | None = None, password_file: str | None = None) -> str:
        """The password for a new keystore (asked twice on a terminal)."""
        return self._resolve_password(
            None, password, password_file, allow_keyring=False, confirm=True
        )

    def remember_password(
        self, address: str, password: str | None = None, password_file: str | None = None
    ) -> None:
        """Opt in: keep this account's keystore password in the OS keyring (checked first)."""
        self.unlock(
            address, password=password, password_file=password_file, remember_in_keyring=True
        )

    def forget_password(self, address: str) -> bool:
        address = _check_address(address)
        removed = keyring_store.forget_password(address)
        kept = [a for a in self._remembered() if a != address]
        if kept != self._remembered():
            self.config.extra[KEYRING_CONFIG_KEY] = kept
            self._save_config()
            removed = True
        return removed

    # -- unlocking ---------------------------------------------------------------------------
    def unlock(
        self,
        address: str | None = None,
        *,
        password: str | None = None,
        password_file: str | None = None,
        remember_in_keyring: bool = False,
    ) -> UnlockedAccount:
        """Decrypt once; later calls within the timeout return the same unlocked account."""
        info = self.get(address)
        address = info.address
        if remember_in_keyring:
            ok, detail = keyring_store.keyring_status()
            if not ok:
                raise WalletError(
                    f"Cannot remember the password: {detail}.",
                    hint="Give a password file or type the password when asked.",
                )
        current = self._unlocked.get(address)
        if current is not None and not current.locked and not remember_in_keyring:
            return current
        from_keyring = (
            password is None
            and not password_file
            and self.prompter.given_password() is None
            and not self._env_password()
            and address in self._remembered()
        )
        pw = self._resolve_password(address, password, password_file)
        doc = keystore.read(Path(info.path))
        try:
            key = keystore.decrypt(doc, pw, source=f"keystore {Path(info.path).name}")
        except WrongPassword as e:
            if from_keyring:
                raise WalletError(
                    f"The password kept in the OS keyring no longer opens {address}.",
                    hint=f"Run `studio wallet keyring forget {address}` and unlock again.",
                ) from e
            raise
        if remember_in_keyring:
            keyring_store.remember_password(address, pw)
            if address not in self._remembered():
                self.config.extra[KEYRING_CONFIG_KEY] = [*self._remembered(), address]
                self._save_config()
        if keystore.weaker_than_ours(doc):
            self._reencrypt(Path(info.path), doc, key, pw)
        acct = UnlockedAccount(key, timeout_s=self._unlock_timeout(), label=info.label)
        del key, pw
        self._unlocked[address] = acct
        return acct

    def _unlock_timeout(self) -> float:
        raw = getattr(self.config, "unlock_timeout_s", 300)
        try:
            t = float(raw)
        except (TypeError, ValueError):
            t = -1.0
        if not MIN_UNLOCK_TIMEOUT_S <= t <= MAX_UNLOCK_TIMEOUT_S or t != t:
            raise ConfigError(
                f"unlock_timeout_s is {raw!r}; it must be between 1 second and 1 day (86400).",
                hint="Fix unlock_timeout_s in config.json (the default is 300).",
            )
        return t

    def _reencrypt(self, path: Path, doc: dict[str, Any], key: bytes, pw: str) -> None:
        """Replace a keystore weaker than ours (pbkdf2, or lower scrypt n/r/p) by one with our
        scrypt parameters under the same password, keeping its metadata; say so."""
        was = keystore.kdf_of(doc)
        meta = dict(doc.get(keystore.META_KEY) or {})
        new = keystore.encrypt(key, pw)
        new[keystore.META_KEY] = {**meta, "reencrypted_at": time.time(), "reencrypted_from": was}
        keystore.write(path.parent, new, overwrite=True)
        self._warn(
            f"the keystore of {keystore.validate(doc)} used weaker encryption ({was}); it was "
            "re-encrypted with scrypt (same password)"
        )

    def lock_all(self) -> None:
        for acct in self._unlocked.values():
            acct.lock()
        self._unlocked.clear()

    # -- export ------------------------------------------------------------------------------
    def export(
        self,
        address: str | None = None,
        *,
        private_key: bool = False,
        password: str | None = None,
        password_file: str | None = None,
    ) -> str:
        """The keystore JSON (safe to back up), or with `private_key=True` the raw key hex after the
        password is checked."""
        info = self.get(address)
        doc = keystore.read(Path(info.path))
        if not private_key:
            pub = {k: v for k, v in doc.items() if k != keystore.META_KEY}
            return json.dumps(pub, indent=2, sort_keys=True) + "\n"
        # Never from the keyring or the environment: whoever exports a raw key types its password
        # (or names a password file).
        pw = self._resolve_password(
            info.address, password, password_file, allow_keyring=False, allow_env=False
        )
        key = keystore.decrypt(doc, pw)
        return "0x" + key.hex()
